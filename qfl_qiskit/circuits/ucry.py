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

#: Key of ``QuantumCircuit.metadata`` under which :func:`append_ucry` lists the spans of its chains, so the exact
#: simulator can apply each as one operation (:func:`ucry_spans`). Transpilers, Aer and Runtime ignore it and see the
#: plain RY / CX gates; the simulator checks every span against the gates before it trusts it.
UCRY_METADATA_KEY = "uniformly_controlled_ry"


def _gray(t: int) -> int:
    return t ^ (t >> 1)


def ucry_branch_matrix(num_controls: int) -> np.ndarray:
    """Matrix M with alpha = M @ theta: the per-branch angles of the decomposition from its RY angles.

    Branch i (controls in basis state |i>, control j = bit j of i) sees the rotation
    sum_t (-1)^popcount(i & gray(t)) * theta_t, so M[i, t] = (-1)^popcount(i & gray(t)): a Hadamard matrix up to
    column order.

    Args:
        num_controls: Number k of control qubits.

    Returns:
        Array of shape (2^k, 2^k).
    """
    t = np.arange(1 << num_controls)
    both = t[:, None] & (t ^ (t >> 1))[None, :]  # i & gray(t)
    parity = np.zeros_like(both)
    for bit in range(num_controls):
        parity ^= (both >> bit) & 1
    return 1.0 - 2.0 * parity


def ucry_coefficients(num_controls: int) -> np.ndarray:
    """Matrix C with theta = C @ alpha: the RY angles of the decomposition from the per-branch angles, the inverse
    of :func:`ucry_branch_matrix`, C = M^T / 2^k.

    Args:
        num_controls: Number k of control qubits.

    Returns:
        Array of shape (2^k, 2^k).
    """
    return ucry_branch_matrix(num_controls).T / (1 << num_controls)


def _flip_control(t: int, k: int) -> int:
    """Which control (its position in ``controls``) the CX after step t uses: the bit that changes from gray(t) to
    gray(t+1), cyclically."""
    return (_gray(t) ^ _gray((t + 1) % (1 << k))).bit_length() - 1


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
    start = len(qc.data)
    coeff = ucry_coefficients(k)
    for t in range(1 << k):
        theta = _combine(coeff[t], angles)
        if not (isinstance(theta, float) and theta == 0.0):
            qc.ry(theta, target)
        qc.cx(controls[_flip_control(t, k)], target)
    index = lambda q: q if isinstance(q, int) else qc.find_bit(q).index  # noqa: E731  (an int or a Qubit)
    span = {"start": start, "stop": len(qc.data), "controls": [index(c) for c in controls], "target": index(target)}
    qc.metadata = {**(qc.metadata or {}), UCRY_METADATA_KEY: [*(qc.metadata or {}).get(UCRY_METADATA_KEY, []), span]}


def ucry_spans(qc: QuantumCircuit) -> dict[int, tuple[int, list[int], int, list[Angle]]]:
    """The uniformly controlled RY chains of ``qc`` that :func:`append_ucry` recorded and that are still intact.

    A span is kept only when the instructions between its start and stop are exactly the chain of
    :func:`append_ucry` on its qubits: for t = 0 .. 2^k - 1 an optional RY on the target, then a CX from the control
    whose bit changes between gray(t) and gray(t+1). Such a chain is the uniformly controlled rotation with branch
    angles ``M @ theta`` whatever its RY angles (see :func:`ucry_branch_matrix`), so a kept span is exact even if the
    circuit was edited after it was built; a span that no longer matches (gates inserted, circuit reversed,
    transpiled) is dropped and its gates run one by one.

    Returns:
        start index -> (stop index, controls, target, the 2^k RY angles of the chain, 0.0 where it has none).
    """
    out: dict[int, tuple[int, list[int], int, list[Angle]]] = {}
    for span in qc.metadata.get(UCRY_METADATA_KEY, []) if isinstance(qc.metadata, dict) else []:
        try:
            start, stop = int(span["start"]), int(span["stop"])
            controls, target = [int(c) for c in span["controls"]], int(span["target"])
        except (KeyError, TypeError, ValueError):
            continue
        thetas = _match_chain(qc, start, stop, controls, target)
        if thetas is not None and not any(s < stop and start < v for s, (v, *_) in out.items()):  # no overlap
            out[start] = (stop, controls, target, thetas)
    return out


def _match_chain(qc: QuantumCircuit, start: int, stop: int, controls: list[int], target: int) -> list[Angle] | None:
    k = len(controls)
    if not (1 <= k <= 24 and 0 <= start < stop <= len(qc.data)) or target in controls or len(set(controls)) != k:
        return None
    thetas: list[Angle] = []
    i = start
    for t in range(1 << k):
        theta: Angle = 0.0
        inst = qc.data[i] if i < stop else None
        if inst is not None and inst.operation.name == "ry" and not inst.clbits \
                and [qc.find_bit(q).index for q in inst.qubits] == [target]:
            theta = inst.operation.params[0]
            i += 1
            inst = qc.data[i] if i < stop else None
        if inst is None or inst.operation.name != "cx" or inst.clbits or \
                [qc.find_bit(q).index for q in inst.qubits] != [controls[_flip_control(t, k)], target]:
            return None
        thetas.append(theta)
        i += 1
    return thetas if i == stop else None


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
