"""Gate data of the exact simulator: matrices of parameterized gates, Kronecker products, and the index / diagonal
forms of permutation and diagonal gates, in Qiskit's conventions (qubit q is bit q of the state index). Applying them
to states is :mod:`qfl_qiskit.execution.sv_program`'s job."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from qfl_qiskit.errors import CircuitError


class UnsupportedGateError(CircuitError, ValueError):
    """The circuit holds an operation the exact simulator cannot apply."""



def _kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kronecker product of (possibly batched) square matrices."""
    if a.ndim == 2 and b.ndim == 2:
        return torch.kron(a, b)
    da, db = a.shape[-1], b.shape[-1]
    # views by reshape: one autograd node per operand instead of two unsqueezes
    out = a.reshape(*a.shape[:-2], da, 1, da, 1) * b.reshape(*b.shape[:-2], 1, db, 1, db)
    return out.reshape(*out.shape[:-4], da * db, da * db)


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


def _param_matrix(name: str, a: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """Batched matrices (B, d, d) of parameterized gates, in Qiskit's conventions.

    The trigonometry runs on the real angles and the complex matrix is assembled from (re, im) pairs in one stack:
    cos / sin of a complex tensor cost about 4x their real counterparts (measured at the QFL encoding's 32 x 256
    angles), and a single stack keeps the autograd graph to a few nodes per gate kind.
    """
    t = a[0].to(dtype.to_real())
    if name in ("rx", "ry", "rz"):
        c, s = torch.cos(t / 2), torch.sin(t / 2)  # any leading shape; the result is (*shape, 2, 2)
        if name == "ry":
            out = torch.stack([c, -s, s, c], dim=-1).unflatten(-1, (2, 2))
            return out if not dtype.is_complex else out.to(dtype)
        z = torch.zeros_like(c)
        pairs = [c, z, z, -s, z, -s, c, z] if name == "rx" else [c, -s, z, z, z, z, c, s]
        return _complex_2x2(pairs, dtype)
    if name == "p":
        one, z = torch.ones_like(t), torch.zeros_like(t)
        return _complex_2x2([one, z, z, z, z, z, torch.cos(t), torch.sin(t)], dtype)
    t = t.to(dtype)
    c, s = torch.cos(t / 2), torch.sin(t / 2)
    j = torch.tensor(1j, dtype=dtype)
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


def _complex_2x2(pairs: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """(*shape, 2, 2) complex matrices from 8 real tensors: (re, im) of entries 00, 01, 10, 11."""
    out = torch.view_as_complex(torch.stack(pairs, dim=-1).unflatten(-1, (2, 2, 2)))
    return out if out.dtype == dtype else out.to(dtype)


def _stack2(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


@cache
def _pauli_matrix(label: str) -> np.ndarray:
    from qiskit.quantum_info import Pauli

    return Pauli(label).to_matrix()
