"""Expectation values of Pauli-sum observables on batched statevectors, by bit-mask Pauli action.

A Pauli string P = (-i)^{#Y} Z^z X^x maps |i> to a phase times |i ^ x>, so <psi|P|psi> is a sum over i of
conj(psi[i ^ x]) psi[i] times a sign: no dense 2^n x 2^n matrix. Terms of all K observables are grouped by their
x mask, so each group costs one gather of the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import torch
from qiskit.quantum_info import SparsePauliOp


@cache
def _pauli_plan(labels: tuple[tuple[tuple[str, complex], ...], ...], n: int):
    """The observables as "channels": one per (observable k, X mask x, real or imaginary part) that has terms.

    Observable k's terms with X mask x act as |i> -> w[i] |i ^ x> (w: the sum of their sign * coeff *
    (-i)^{#Y}), made Hermitian ((w[i] + conj(w[i ^ x])) / 2, which leaves every expectation value as it is). Its
    real part and i times its imaginary part are each Hermitian again, so channel c is
    E_c = Re sum_i conj(psi[i]) v_c[i] psi[i ^ x_c] (a real part) or the same with i v_c (an imaginary part), with
    v_c real. Returns (source indices (C, 2^n), real weights (C, 2^n), the imaginary-part flags (C,) with the real
    channels first, the channel -> observable map (C,)).
    """
    idx = np.arange(1 << n)
    parts: dict[tuple[int, int], np.ndarray] = {}
    for k, terms in enumerate(labels):
        for label, coeff in terms:
            bits = label[::-1]  # label is big-endian: last letter is qubit 0
            x = sum(1 << q for q, ch in enumerate(bits) if ch in "XY")
            z = sum(1 << q for q, ch in enumerate(bits) if ch in "ZY")
            ny = sum(1 for ch in bits if ch == "Y")
            # P = (-i)^{#Y} Z^z X^x;  <i^x| P |i> = (-i)^{#Y} (-1)^{|(i^x) & z|}, so (P psi)[i] = that at i^x times
            # psi[i ^ x]: the weight of psi[i ^ x] in row i is (-i)^{#Y} (-1)^{|i & z|}
            parity = np.array([bin(v).count("1") & 1 for v in (idx & z)])
            w = parts.setdefault((x, k), np.zeros(1 << n, dtype=complex))
            w += ((-1j) ** ny) * (1 - 2 * parity) * coeff
    channels: list[tuple[bool, int, int, np.ndarray]] = []
    for (x, k), w in sorted(parts.items()):
        w = (w + w[idx ^ x].conj()) / 2
        for imaginary, v in ((False, w.real), (True, w.imag)):
            if np.any(v != 0):
                channels.append((imaginary, x, k, v))
    channels.sort(key=lambda c: c[0])  # real parts first (a stable sort)
    if not channels:  # all observables zero
        return (np.zeros((0, 1 << n), dtype=np.int64), np.zeros((0, 1 << n)), np.zeros(0, dtype=bool),
                np.zeros(0, dtype=np.int64))
    source = np.stack([idx ^ x for _, x, _, _ in channels])
    weights = np.stack([v for *_, v in channels])
    return (source, weights, np.array([c[0] for c in channels]), np.array([c[2] for c in channels]))


_WEIGHTS: dict[tuple, tuple] = {}


def _weights(observables: Sequence[SparsePauliOp], n: int, dtype: torch.dtype) -> tuple:
    """The channels of :func:`_pauli_plan` as tensors for ``dtype``, made once per observable set: the flat source
    index (C 2^n,), the weights (C, 2^n) (each repeated over (re, im) for complex states: (C, 2 2^n)), the number
    of real-part channels (a real state has no imaginary ones: they vanish on it), the (C, K) channel -> observable
    matrix (None when channels and observables match one to one, in order).

    The cache key is the observables' content (their symplectic arrays and coefficients as bytes: 50 us for 8
    Pauli strings, against 380 us for the labels ``to_list`` spells out), so an operator changed in place is
    never served stale weights.
    """
    fingerprint = tuple((op.coeffs.tobytes(), op.paulis.x.tobytes(), op.paulis.z.tobytes(),
                         op.paulis.phase.tobytes(), op.num_qubits) for op in observables)
    cached = _WEIGHTS.get((fingerprint, n, dtype))
    if cached is None:
        labels = tuple(tuple((lbl, complex(c)) for lbl, c in op.to_list()) for op in observables)
        source, weights, imaginary, target = _pauli_plan(labels, n)
        if not dtype.is_complex:
            keep = ~imaginary
            source, weights, imaginary, target = source[keep], weights[keep], imaginary[keep], target[keep]
        else:
            weights = np.repeat(weights, 2, axis=1)  # (re, im) of each amplitude
        k = len(observables)
        to_obs = None
        if not np.array_equal(target, np.arange(k)):
            to_obs = torch.zeros(len(target), k, dtype=dtype.to_real())
            to_obs[np.arange(len(target)), target] = 1.0
        cached = (torch.as_tensor(source.reshape(-1)), torch.as_tensor(weights, dtype=dtype.to_real()),
                  int((~imaginary).sum()), to_obs, k)
        if len(_WEIGHTS) > 64:
            _WEIGHTS.clear()
        _WEIGHTS[(fingerprint, n, dtype)] = cached
    return cached


def _swap(state: torch.Tensor) -> torch.Tensor:
    """The real view of -i psi for a complex psi (B, 2^n): (re, im) -> (im, -re) per amplitude, so that
    Re(conj(psi) i q) = <swap(psi), q> on real views (one complex scalar product: the stack of the swapped halves
    measured 5x slower)."""
    return torch.view_as_real(state * -1j).reshape(state.shape[0], -1)


class _Expectations(torch.autograd.Function):
    """E[b, c] = <u_c, Q_c> with Q_c = v_c * psi[b, i ^ x_c] in real arithmetic (u_c the state's real view, or
    :func:`_swap` of it for an imaginary-part channel), a hand-written backward.

    Why this shape: each channel is one weight vector (most random Pauli observables are one channel), so the
    forward is a gather, one real product with the weights and one batched dot per channel, and the gradient
    2 sum_c g_c W_c psi is one batched product with the Q kept from the forward pass (torch's convention for a real
    loss of a complex input: dL/d(re) + i dL/d(im)). The former grouping by X mask with dense (G 2^n, K) weights
    spent most of its time in a complex product and two matmuls with mostly zero weights: forward and gradient of
    8 random Pauli strings on 9 qubits, batch 32, measured 2.9 ms for it against 1.35 ms for this, in one process.
    """

    @staticmethod
    def forward(ctx, state: torch.Tensor, source: torch.Tensor, weights: torch.Tensor,  # type: ignore[override]
                real: int, to_obs: torch.Tensor | None, k: int):
        bsz = state.shape[0]
        channels = weights.shape[0]
        ctx.real, ctx.complex_state, ctx.shape, ctx.dtype = real, state.is_complex(), state.shape, state.dtype
        if channels == 0:  # every observable is zero
            ctx.save_for_backward(None, None)
            return state.new_zeros(bsz, k, dtype=weights.dtype)
        # gather with an expanded index: 140 us against index_select's 1.4 ms (32 x 512 complex, 8 channels); a
        # gather of the (re, im) view instead measured 2x slower than this complex one
        gathered = torch.gather(state, 1, source.expand(bsz, -1))  # (B, C 2^n), complex or real
        view = torch.view_as_real(state).reshape(bsz, -1) if state.is_complex() else state
        q = (torch.view_as_real(gathered) if state.is_complex() else gathered).view(bsz, channels, -1)
        q.mul_(weights)  # in place: the gather's buffer is ours
        out = torch.bmm(q[:, :real], view.unsqueeze(-1)).squeeze(-1)  # (B, C_re)
        if real < channels:
            out = torch.cat([out, torch.bmm(q[:, real:], _swap(state).unsqueeze(-1)).squeeze(-1)], 1)
        if to_obs is not None:
            out = out @ to_obs
        ctx.save_for_backward(q, to_obs)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        q, to_obs = ctx.saved_tensors
        if q is None:
            return torch.zeros(ctx.shape, dtype=ctx.dtype), None, None, None, None, None
        g = 2 * (grad @ to_obs.t() if to_obs is not None else grad).to(q.dtype)  # (B, C)
        real, channels = ctx.real, q.shape[1]
        out = torch.bmm(g[:, None, :real], q[:, :real]).squeeze(1)  # (B, 2^n [x 2])
        if not ctx.complex_state:
            return out, None, None, None, None, None
        out = torch.view_as_complex(out.view(out.shape[0], -1, 2))
        if real < channels:  # the adjoint of _swap: times i
            out = out + torch.view_as_complex(torch.bmm(g[:, None, real:], q[:, real:]).view(out.shape[0], -1, 2)) * 1j
        return out, None, None, None, None, None


def pauli_expectations(state: torch.Tensor, observables: Sequence[SparsePauliOp], num_qubits: int) -> torch.Tensor:
    """Real parts of <psi|O_k|psi> for states (B, 2^n) by bit-mask Pauli action (no dense matrices).

    Args:
        state: States (B, 2^n).
        observables: K observables on ``num_qubits`` qubits.
        num_qubits: n.

    Returns:
        Tensor (B, K).

    Raises:
        ValueError: An observable on the wrong number of qubits.
    """
    for op in observables:
        if op.num_qubits != num_qubits:
            raise ValueError(f"observable on {op.num_qubits} qubits for a {num_qubits}-qubit circuit")
    return _Expectations.apply(state, *_weights(observables, num_qubits, state.dtype))
