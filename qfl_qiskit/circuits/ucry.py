"""Parameterized uniformly controlled RY.

Qiskit's ``UCRYGate`` only takes numeric angles ("An angle cannot be converted to type float" for parameters),
so it cannot stay parameterized for transpile-once/bind-many. This builds the standard decomposition (Mottonen et
al., PRL 93, 130502): 2^k RY gates on the target, whose angles are linear combinations of the 2^k target angles,
interleaved with CNOTs from the controls in Gray-code order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterExpression

Angle = float | ParameterExpression


def _gray(t: int) -> int:
    return t ^ (t >> 1)


def ucry_coefficients(num_controls: int) -> np.ndarray:
    """Matrix C with theta = C @ alpha: the RY angles of the decomposition from the per-branch angles.

    Branch i (controls in basis state |i>, control j = bit j of i) sees the rotation
    sum_t (-1)^popcount(i & gray(t)) * theta_t, so alpha = M theta with M[i, t] = (-1)^popcount(i & gray(t)).
    M is a Hadamard matrix up to column order, so C = M^T / 2^k.

    Args:
        num_controls: Number k of control qubits.

    Returns:
        Array of shape (2^k, 2^k).
    """
    n = 1 << num_controls
    m = np.array([[(-1) ** bin(i & _gray(t)).count("1") for t in range(n)] for i in range(n)], dtype=float)
    return m.T / n


def append_ucry(
    qc: QuantumCircuit, angles: Sequence[Angle], controls: Sequence[int], target: int
) -> None:
    """Append a uniformly controlled RY: target gets RY(angles[i]) when the controls are in basis state |i>.

    Control ``controls[j]`` is bit j of the branch index i (little-endian, as in ``UCRYGate``).

    Args:
        qc: Circuit to append to.
        angles: 2^k angles, numbers or parameter expressions.
        controls: The k control qubits.
        target: The target qubit.

    Raises:
        ValueError: ``len(angles)`` is not 2^len(controls).
    """
    k = len(controls)
    if len(angles) != 1 << k:
        raise ValueError(f"a UCRY with {k} controls needs {1 << k} angles, got {len(angles)}")
    if k == 0:
        qc.ry(angles[0], target)
        return
    coeff = ucry_coefficients(k)
    for t in range(1 << k):
        theta = _combine(coeff[t], angles)
        if not (isinstance(theta, float) and theta == 0.0):
            qc.ry(theta, target)
        # after step t, flip with the control whose bit changes from gray(t) to gray(t+1) (cyclically)
        changed = _gray(t) ^ _gray((t + 1) % (1 << k))
        qc.cx(controls[changed.bit_length() - 1], target)


def _combine(row: np.ndarray, angles: Sequence[Angle]) -> Angle:
    """sum_i row[i] * angles[i], folding numeric terms into one constant and skipping zero coefficients."""
    constant = 0.0
    expr: ParameterExpression | None = None
    for c, a in zip(row, angles):
        if c == 0.0:
            continue
        if isinstance(a, ParameterExpression):
            term = float(c) * a
            expr = term if expr is None else expr + term
        else:
            constant += float(c) * float(a)
    if expr is None:
        return constant
    return expr + constant if constant != 0.0 else expr
