"""Gate-level parameter shift for circuits whose gate angles are linear combinations of parameters.

The QFL encoding makes angles such as (x0 - x1 + x2 - x3)/4 + c, and transpiled (ISA) circuits turn one logical
angle into several ``rz`` gates with expressions. The two-term shift rule holds per *gate* (a rotation
exp(-i phi/2 P) with P a Pauli string), not per parameter, so this module rewrites the circuit with one fresh angle
phi_g per parameterized gate, phi = A @ theta + b, and uses the chain rule:

    d<O>/d theta_j = sum_g A[g, j] * (<O>(phi + pi/2 e_g) - <O>(phi - pi/2 e_g)) / 2.

An angle that is not affine, phi_g = f(theta) (Qiskit's ``zz_feature_map`` has (pi - x0)(pi - x1)), gets its row
of A from the partial derivatives of f at each binding (the chain rule, per binding).

All shifted bindings of a batch are one array of shape (2G, B, G): one PUB, one estimator call. This is written
here because qiskit-machine-learning's ParamShiftEstimatorGradient shifts parameters (wrong when a parameter feeds
gates with coefficients other than 1, or several gates) and sends a block per sample and shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterExpression

from qfl_qiskit.errors import ExecutionError

#: Gates U(phi) = exp(-i phi/2 P) (up to a global phase) for a Pauli string P: the two-term rule is exact.
SHIFTABLE = frozenset({"rx", "ry", "rz", "p", "rxx", "ryy", "rzz", "rzx"})


@dataclass(frozen=True)
class ShiftPlan:
    """A circuit with one angle per parameterized gate, and the affine map from circuit parameters to angles.

    Attributes:
        circuit: The gate circuit; its parameters are the G gate angles (in ``circuit.parameters`` order).
        matrix: A of shape (G, p): gate angle g = A[g] @ theta + offset[g], theta in the source circuit's
            ``parameters`` order.
        offset: b of shape (G,).
    """

    circuit: QuantumCircuit
    matrix: np.ndarray
    offset: np.ndarray
    derived: tuple[tuple[int, Any, tuple[Any, ...], tuple[int, ...]], ...] = ()  # (gate, f, df/dtheta_i, cols)

    @property
    def num_gates(self) -> int:
        """Number G of parameterized gates."""
        return self.matrix.shape[0]

    def angles(self, values: np.ndarray) -> np.ndarray:
        """Gate angles (..., G) for circuit parameter values (..., p)."""
        phi = values @ self.matrix.T + self.offset
        for g, fn, _, cols in self.derived:
            phi[..., g] = fn(*[values[..., c] for c in cols])
        return phi

    def matrices(self, values: np.ndarray) -> np.ndarray:
        """d angles / d theta of shape (..., G, p) at ``values`` (the constant A where every angle is affine)."""
        out = np.broadcast_to(self.matrix, values.shape[:-1] + self.matrix.shape).copy()
        for g, _, grads, cols in self.derived:
            for c, grad in zip(cols, grads):
                out[..., g, c] = grad(*[values[..., k] for k in cols])
        return out

    def shifted(self, values: np.ndarray) -> np.ndarray:
        """Angles of every +-pi/2 shift: shape (2G, ..., G); rows [0, G) are +, rows [G, 2G) are -."""
        phi = self.angles(values)
        eye = np.eye(self.num_gates) * (np.pi / 2)
        eye = eye.reshape((self.num_gates,) + (1,) * (phi.ndim - 1) + (self.num_gates,))
        return np.concatenate([phi[None] + eye, phi[None] - eye], axis=0)

    def jacobian(self, shifted_evs: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """d evs / d theta of shape (..., K, p) from the evs (2G, ..., K) of :meth:`shifted` bindings (``values``:
        the bindings they were shifted from, needed when an angle is not affine)."""
        g = self.num_gates
        d_phi = (shifted_evs[:g] - shifted_evs[g:]) / 2.0  # (G, ..., K)
        if not self.derived:
            return np.einsum("g...k,gp->...kp", d_phi, self.matrix)
        if values is None:
            raise ExecutionError("this circuit has angles that are not affine: pass the values to jacobian()")
        return np.einsum("g...k,...gp->...kp", d_phi, self.matrices(values))


def shift_plan(circuit: QuantumCircuit) -> ShiftPlan:
    """Build the :class:`ShiftPlan` of a circuit.

    Args:
        circuit: A parameterized circuit (logical or ISA; the layout is kept).

    Returns:
        The plan.

    Raises:
        ExecutionError: A parameterized gate the two-term rule does not cover, or an angle that is not linear in
            the parameters.
    """
    params = list(circuit.parameters)
    index = {p: i for i, p in enumerate(params)}
    out = circuit.copy_empty_like()
    out.global_phase = 0.0  # a (parameterized) global phase does not change expectation values
    rows, offsets, derived = [], [], []
    for inst in circuit.data:
        op = inst.operation
        exprs = [a for a in op.params if isinstance(a, ParameterExpression) and a.parameters]
        if not exprs:
            out.append(inst)
            continue
        if op.name not in SHIFTABLE or len(op.params) != 1:
            raise ExecutionError(
                f"parameter shift cannot differentiate gate '{op.name}' with parameters; "
                f"use gates from {sorted(SHIFTABLE)} (transpile to rz/sx/cx first) or the exact autograd path"
            )
        expr = op.params[0]
        row = np.zeros(len(params))
        coeffs = {p: expr.gradient(p) for p in expr.parameters}
        if any(isinstance(c, ParameterExpression) and c.parameters for c in coeffs.values()):
            derived.append(_derived(len(rows), expr, index))
            const = 0.0
        else:
            for p, coeff in coeffs.items():
                row[index[p]] = float(coeff)
            const = float(expr.bind({p: 0.0 for p in expr.parameters}))
        phi = Parameter(f"_phi_{len(rows):06d}")  # zero-padded: Qiskit sorts parameters by name
        out.append(op.__class__(phi), inst.qubits, inst.clbits)
        rows.append(row)
        offsets.append(const)
    matrix = np.array(rows).reshape(len(rows), len(params))
    return ShiftPlan(out, matrix, np.array(offsets, dtype=float), tuple(derived))


def _derived(gate: int, expr: ParameterExpression, index: dict) -> tuple:
    """A non-affine angle as numpy functions: its value and its partial derivatives, of the columns it reads.

    The derivatives are taken by sympy on ``expr.sympify()``, not from ``ParameterExpression.gradient``: with
    qiskit 2.6, ``(a * b).gradient(a)`` prints as ``b`` but sympifies to ``a`` (seen here), which would give
    wrong gradients silently.
    """
    import sympy

    params = sorted(expr.parameters, key=lambda p: index[p])
    value = expr.sympify()
    own = {s.name: s for s in value.free_symbols}  # the expression's own symbols, by name
    symbols = [own.get(p.name, sympy.Symbol(p.name)) for p in params]

    def numpy_fn(e: Any) -> Any:
        fn = sympy.lambdify(symbols, e, modules="numpy")
        return lambda *cols: np.broadcast_to(np.real(fn(*cols)), np.shape(cols[0])).astype(float)

    grads = tuple(numpy_fn(sympy.diff(value, sym)) for sym in symbols)
    return (gate, numpy_fn(value), grads, tuple(index[p] for p in params))
