"""Tensor kernels of the exact simulator: applying gate matrices and permutations to batched states (B, 2^n), and
building the matrices of parameterized gates in Qiskit's conventions (qubit q is bit q of the state index)."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from qfl_qiskit.errors import CircuitError


class UnsupportedGateError(CircuitError, ValueError):
    """The circuit holds an operation the exact simulator cannot apply."""



def _apply_window(state: torch.Tensor, mat: torch.Tensor, lo: int, w: int, n: int) -> torch.Tensor:
    """Apply a (B, d, d) or (d, d) matrix, d = 2^w, on qubits lo..lo+w-1 as one well-shaped batched matmul."""
    bsz, d, hi, low = state.shape[0], 1 << w, 1 << (n - lo - w), 1 << lo
    if low == 1:  # window at the bottom: rows of (B, hi, d) times mat^T
        return (state.reshape(bsz, hi, d) @ mat.transpose(-1, -2)).reshape(bsz, -1)
    if hi == 1:  # window at the top: mat times (B, d, low)
        return (mat @ state.reshape(bsz, d, low)).reshape(bsz, -1)
    view = state.reshape(bsz, hi, d, low).transpose(1, 2).reshape(bsz, d, hi * low)
    return (mat @ view).reshape(bsz, d, hi, low).transpose(1, 2).reshape(bsz, -1)


def _kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kronecker product of (possibly batched) square matrices."""
    if a.ndim == 2 and b.ndim == 2:
        return torch.kron(a, b)
    da, db = a.shape[-1], b.shape[-1]
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(*out.shape[:-4], da * db, da * db)


class _Permute(torch.autograd.Function):
    """new[:, i] = old[:, src[i]]; the gradient is permuted back with the inverse index (cheaper than scatter)."""

    @staticmethod
    def forward(ctx, state, src, inverse):  # type: ignore[override]
        ctx.save_for_backward(inverse)
        return state[:, src]  # advanced indexing: about 2x faster than index_select along dim 1 here

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (inverse,) = ctx.saved_tensors
        return grad[:, inverse], None, None

def _permutation_source(mat: np.ndarray, qubits: tuple[int, ...], n: int, idx: np.ndarray) -> np.ndarray:
    """Index array src with new_state[i] = old_state[src[i]] for a 0/1 permutation matrix on ``qubits``."""
    local = np.zeros_like(idx)
    for j, q in enumerate(qubits):
        local |= ((idx >> q) & 1) << j
    # column c has its 1 at row r: old local state c goes to new local state r; invert to get the source
    src_local = np.argmax(np.abs(mat), axis=1)  # row r <- column src_local[r]
    src = idx.copy()
    for j, q in enumerate(qubits):
        src &= ~(1 << q)
    new_local = src_local[local]
    for j, q in enumerate(qubits):
        src |= ((new_local >> j) & 1) << q
    return src


def _full_diagonal(diag: np.ndarray, qubits: tuple[int, ...], n: int, idx: np.ndarray) -> np.ndarray:
    local = np.zeros_like(idx)
    for j, q in enumerate(qubits):
        local |= ((idx >> q) & 1) << j
    return diag[local]


def _apply(state: torch.Tensor, mat: torch.Tensor, qubits: tuple[int, ...], n: int) -> torch.Tensor:
    """Apply a (batched (B, d, d) or shared (d, d)) gate matrix on ``qubits`` to states (B, 2^n)."""
    bsz = state.shape[0]
    if len(qubits) == 1:
        q = qubits[0]
        s = state.reshape(bsz, 1 << (n - q - 1), 2, 1 << q)
        eq = "bij,bajc->baic" if mat.ndim == 3 else "ij,bajc->baic"
        return torch.einsum(eq, mat, s).reshape(bsz, -1)
    k = len(qubits)
    axes = [1 + (n - 1 - q) for q in reversed(qubits)]  # most significant local bit first
    rest = [a for a in range(1, n + 1) if a not in axes]
    perm = [0, *rest, *axes]
    s = state.reshape(bsz, *([2] * n)).permute(perm).reshape(bsz, -1, 1 << k)
    s = s @ (mat.transpose(-1, -2))  # (B, rest, d) @ (d, d)^T applies mat to the last axis
    inverse = np.argsort(perm).tolist()
    return s.reshape(bsz, *([2] * n)).permute(inverse).reshape(bsz, -1)


def _param_matrix(name: str, a: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """Batched matrices (B, d, d) of parameterized gates, in Qiskit's conventions."""
    t = a[0].to(dtype)
    c, s = torch.cos(t / 2), torch.sin(t / 2)  # any leading shape; the result is (*shape, d, d)
    if name == "ry":  # the only one built in real arithmetic too
        return _stack2([[c, -s], [s, c]])
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    j = torch.tensor(1j, dtype=dtype)
    if name == "rx":
        return _stack2([[c, -j * s], [-j * s, c]])
    if name == "rz":
        return _stack2([[torch.exp(-j * t / 2), zero], [zero, torch.exp(j * t / 2)]])
    if name == "p":
        return _stack2([[one, zero], [zero, torch.exp(j * t)]])
    if name == "u":
        phi, lam = a[1].to(dtype), a[2].to(dtype)
        return _stack2([[c, -torch.exp(j * lam) * s], [torch.exp(j * phi) * s, torch.exp(j * (phi + lam)) * c]])
    if name in ("rzz", "rxx", "ryy", "rzx"):
        pauli = {"rzz": "ZZ", "rxx": "XX", "ryy": "YY", "rzx": "XZ"}[name]  # rzx(θ) on (q0, q1) = exp(-iθ/2 Z0 X1)
        p = torch.as_tensor(_pauli_matrix(pauli), dtype=dtype)
        eye = torch.eye(4, dtype=dtype)
        return c[..., None, None] * eye - j * s[..., None, None] * p
    if name in ("crx", "cry", "crz", "cp"):
        inner = _param_matrix({"crx": "rx", "cry": "ry", "crz": "rz", "cp": "p"}[name], a, dtype)
        out = torch.zeros(*t.shape, 4, 4, dtype=dtype)
        # control is qubit 0 of the gate (bit 0 of the local index), target bit 1
        out[..., 0, 0] = 1
        out[..., 2, 2] = 1
        out[..., 1, 1], out[..., 1, 3] = inner[..., 0, 0], inner[..., 0, 1]
        out[..., 3, 1], out[..., 3, 3] = inner[..., 1, 0], inner[..., 1, 1]
        return out
    raise UnsupportedGateError(f"cannot simulate gate '{name}'")


def _stack2(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


@cache
def _pauli_matrix(label: str) -> np.ndarray:
    from qiskit.quantum_info import Pauli

    return Pauli(label).to_matrix()
