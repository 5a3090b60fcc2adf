"""Batched, differentiable statevector simulation in torch, compiled once from a Qiskit circuit.

Why hand-written: Qiskit's ``Statevector`` and Aer evaluate one binding at a time and are not differentiable, and
the per-circuit overhead dominates at QNN sizes (a 10-qubit state is 1,024 amplitudes). Here a circuit is compiled
once: gate angles are affine functions of the parameters (``values @ A.T + b``, which covers the QFL encoding's
linear combinations); runs of single-qubit gates are fused into window matrices, built for the whole batch in a few
vectorised ops (once per batch for gates whose angles are shared weights); permutation gates (x, cx, swap, ccx)
become index gathers and diagonal gates phase vectors. The state evolution itself is a planned program
(:mod:`qfl_qiskit.execution.sv_program`) on one state tensor (B, 2^n) with a hand-written backward, so gradients
with respect to every parameter come from torch autograd.

Qubit order is Qiskit's: qubit q is bit q of the statevector index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from dataclasses import dataclass

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterExpression
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.circuits.ucry import ucry_branch_matrix, ucry_spans
from qfl_qiskit.execution.gate_ops import (
    UnsupportedGateError,
    _full_diagonal,
    _kron,
    _param_matrix,
    _permutation_source,
)
from qfl_qiskit.execution.pauli import pauli_expectations as _pauli_expectations
from qfl_qiskit.execution.sv_program import Evolve, Planner, Program


_SKIP = {"barrier", "delay"}
#: Gates applied as an index permutation of the state (no arithmetic).
_PERMUTATION = {"x", "cx", "swap", "ccx"}
#: Parameterized gates by name -> number of angles.
_PARAMETRIC = {"rx": 1, "ry": 1, "rz": 1, "p": 1, "u": 3, "rzz": 1, "rxx": 1, "ryy": 1, "rzx": 1,
               "crx": 1, "cry": 1, "crz": 1, "cp": 1}
#: Single-qubit rotations whose angles add when two follow each other on a qubit.
_ADDITIVE = {"rx", "ry", "rz", "p"}
_CONSTANT = {"h", "y", "z", "s", "sdg", "t", "tdg", "sx", "sxdg", "id", "cy", "cz", "ecr", "ch"}
SUPPORTED = sorted(_PERMUTATION | set(_PARAMETRIC) | _CONSTANT | _SKIP)


#: Largest window of qubits whose single-qubit gates are fused into one matrix.
_WINDOW = 4
#: Circuits up to this many qubits fuse a whole layer of single-qubit gates into one 2^n x 2^n matrix: at QNN sizes
#: a pass costs its torch call, not its arithmetic (a 5-qubit layer as one (B, 32) x (32, 32) product instead of
#: two windows), while from 7 qubits the B 4^n multiply-adds start to count.
_WHOLE_LAYER_QUBITS = 6


@dataclass
class _Op:
    """One compiled step. kinds: "perm" (index permutation), "diag" (phase vector), "const" / "param" (a gate
    matrix on any qubits), "ucr" (a uniformly controlled rotation on qubits (controls..., target): one 2x2
    matrix per control state, ``angles`` its 2^k branch angle columns), "layer" (pending single-qubit gates, split by
    the planner into "block" ops: fused single-qubit gates on a window of qubits)."""

    kind: str
    qubits: tuple[int, ...]
    name: str
    data: torch.Tensor | None = None  # permutation source index, diagonal, or constant matrix
    angles: tuple[int, ...] = ()  # columns of the angle table for "param"
    factors: dict[int, list] | None = None  # "block": qubit -> [("const", (2,2) tensor) | (name, cols)]


def _flatten(circuit: QuantumCircuit) -> tuple[list[tuple[object, tuple[int, ...]]], list[object]]:
    """(operation, qubit indices) in order, unrolling gate definitions until every gate is supported; and the
    global phases met on the way (the circuit's and those of unrolled definitions)."""
    out: list[tuple[object, tuple[int, ...]]] = []

    def visit(qc: QuantumCircuit, qmap: Sequence[int], depth: int) -> None:
        spans = ucry_spans(qc)
        skip_to = 0
        for i, inst in enumerate(qc.data):
            if i < skip_to:
                continue
            if i in spans:  # a uniformly controlled RY chain: one operation
                skip_to, controls, target, thetas = spans[i]
                out.append((_UniformRY(thetas), tuple(qmap[q] for q in (*controls, target))))
                continue
            op = inst.operation
            qubits = tuple(qmap[qc.find_bit(q).index] for q in inst.qubits)
            if op.name in _SKIP:
                continue
            if inst.clbits or op.name in ("measure", "reset") or getattr(op, "condition", None) is not None:
                raise UnsupportedGateError(
                    f"cannot simulate '{op.name}' exactly (measurement, reset or classical control); "
                    "remove it: expectation values need a unitary circuit"
                )
            if op.name == "box":  # a scope without classical control: its body is ordinary gates
                visit(op.blocks[0], qubits, depth + 1)
                continue
            if op.name in _PERMUTATION or op.name in _PARAMETRIC or op.name in _CONSTANT:
                if op.name not in _PARAMETRIC and any(isinstance(p, ParameterExpression) for p in op.params):
                    raise UnsupportedGateError(f"gate '{op.name}' with parameters is not supported")
                out.append((op, qubits))
                continue
            definition = getattr(op, "definition", None)
            if definition is None or depth > 20:
                raise UnsupportedGateError(
                    f"cannot simulate gate '{op.name}' exactly; supported: {', '.join(SUPPORTED)} "
                    "and gates defined in terms of them"
                )
            if isinstance(definition.global_phase, ParameterExpression) or definition.global_phase:
                phases.append(definition.global_phase)
            visit(definition, qubits, depth + 1)

    phases: list[object] = [circuit.global_phase]
    visit(circuit, list(range(circuit.num_qubits)), 0)
    return out, phases


class _UniformRY:
    """A uniformly controlled RY found by :func:`ucry_spans`: qubits (controls..., target); ``params`` the 2^k RY
    angles of its chain (branch i then rotates by (M @ params)[i], :func:`ucry_branch_matrix`)."""

    name = "ucry"

    def __init__(self, params: list[object]) -> None:
        self.params = params


class _AngleTable:
    """Collects angle functions a = A @ [theta, d(theta)] + b of the circuit parameters theta.

    Affine angles (the QFL encoding's sums, an ISA circuit's many ``rz``) are rows of A over theta. An angle that is
    not affine (Qiskit's ``zz_feature_map`` has (pi - x0)(pi - x1)) becomes a derived column d_k(theta), evaluated
    in torch from the expression (so autograd differentiates it), with a coefficient 1 in its row.
    """

    def __init__(self, params: Sequence[object]) -> None:
        self.index = {p: i for i, p in enumerate(params)}
        self.by_name = {p.name: i for p, i in self.index.items()}  # type: ignore[attr-defined]
        self.rows: list[np.ndarray] = []
        self.derived_rows: list[dict[int, float]] = []
        self.consts: list[float] = []
        self.derived: list[ParameterExpression] = []
        self._probe_values = np.random.default_rng(0).uniform(-1.0, 1.0, len(params))
        self._probe = dict(zip(params, self._probe_values.tolist()))
        self._seen: dict[tuple, int] = {}

    def _affine(self, angle: ParameterExpression) -> tuple[dict[int, float], float] | None:
        """The coefficients and constant of an affine ``angle`` read from its text, checked at a random point.

        Why not ``angle.gradient(p)`` for every parameter: a QFL encoding angle sums 2^k inputs, and at M = 207
        (k = 8) its 512 angles took 6.7 s in 106k gradient calls; this takes about 1.5 ms per angle (one ``str``,
        one ``bind_all``). Qiskit writes floats in shortest round-trip form, so the parsed coefficients are exact;
        any text this does not read (products, parentheses, unusual names) or that disagrees at the probe point
        returns None and goes the symbolic way.
        """
        text = str(angle)
        parts = re.split(r" ([+-]) ", text)
        row: dict[int, float] = {}
        const = 0.0
        for sign, term in zip(["+", *parts[1::2]], parts[0::2]):
            factor = -1.0 if sign == "-" else 1.0
            if term.startswith("-"):
                factor, term = -factor, term[1:]
            if term in self.by_name:
                coeff, name = 1.0, term
            else:
                head, star, name = term.partition("*")
                try:
                    coeff = float(head)
                except ValueError:
                    return None
                if not star:
                    const += factor * coeff
                    continue
                if name not in self.by_name:
                    return None
            col = self.by_name[name]
            row[col] = row.get(col, 0.0) + factor * coeff
        cols, coeffs = np.fromiter(row, int, len(row)), np.fromiter(row.values(), float, len(row))
        if not (np.isfinite(const) and np.isfinite(coeffs).all()):
            return None
        try:
            value = complex(angle.bind_all(self._probe))  # type: ignore[attr-defined]
        except (TypeError, ValueError, KeyError):
            return None
        predicted = const + float(coeffs @ self._probe_values[cols])
        scale = 1.0 + abs(const) + float(np.abs(coeffs).sum())
        return (row, const) if abs(value - predicted) <= 1e-12 * scale else None

    def _parse(self, angle: object) -> tuple[np.ndarray, dict[int, float], float]:
        """(row over theta, derived-column coefficients, constant) of one angle."""
        row = np.zeros(len(self.index))
        drow: dict[int, float] = {}
        fast = self._affine(angle) if isinstance(angle, ParameterExpression) else None
        if fast is not None:
            for col, coeff in fast[0].items():
                row[col] = coeff
            const = fast[1]
        elif isinstance(angle, ParameterExpression) and angle.parameters:
            coeffs = {p: angle.gradient(p) for p in angle.parameters}
            if any(isinstance(c, ParameterExpression) and c.parameters for c in coeffs.values()):
                drow[len(self.derived)] = 1.0
                self.derived.append(angle)
                const = 0.0
            else:
                for p, coeff in coeffs.items():
                    row[self.index[p]] = float(coeff)
                const = float(angle.bind({p: 0.0 for p in angle.parameters}))
        else:
            const = float(angle)
        return row, drow, const

    def _append(self, row: np.ndarray, drow: dict[int, float], const: float) -> int:
        """The index of this angle function, a new one unless an identical function is already in the table (the
        QFL's P encodings share their angles, so their matrices are built once)."""
        key = (row.tobytes(), tuple(sorted(drow.items())), const)
        index = self._seen.get(key)
        if index is None:
            self.rows.append(row)
            self.derived_rows.append(drow)
            self.consts.append(const)
            index = self._seen[key] = len(self.rows) - 1
        return index

    def add(self, angle: object, gate: str = "global phase") -> int:
        """The index of ``angle``, a number or a parameter expression."""
        return self._append(*self._parse(angle))

    def merge(self, i: int, j: int) -> int:
        """The index of the sum of angles i and j."""
        drow = dict(self.derived_rows[i])
        for k, v in self.derived_rows[j].items():
            drow[k] = drow.get(k, 0.0) + v
        return self._append(self.rows[i] + self.rows[j], drow, self.consts[i] + self.consts[j])

    def linear(self, angles: Sequence[object], coeff: np.ndarray) -> list[int]:
        """Indices of the angles ``coeff @ angles``, one per row of ``coeff`` (``angles`` themselves are not
        added: only their combinations are evaluated)."""
        parsed = [self._parse(a) for a in angles]
        rows = coeff @ np.stack([r for r, _, _ in parsed])
        consts = coeff @ np.array([c for _, _, c in parsed])
        out = []
        for r, row in enumerate(rows):
            drow: dict[int, float] = {}
            for w, (_, d, _) in zip(coeff[r], parsed):
                for k, v in d.items():
                    drow[k] = drow.get(k, 0.0) + float(w) * v
            out.append(self._append(row, drow, float(consts[r])))
        return out

    def matrix(self) -> np.ndarray:
        """A of shape (angles, p + derived columns)."""
        p, d = len(self.index), len(self.derived)
        out = np.zeros((len(self.rows), p + d))
        for g, (row, drow) in enumerate(zip(self.rows, self.derived_rows)):
            out[g, :p] = row
            for k, v in drow.items():
                out[g, p + k] = v
        return out


_TORCH_FUNCTIONS = {"sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "exp": torch.exp, "log": torch.log,
                    "sqrt": torch.sqrt, "asin": torch.asin, "acos": torch.acos, "atan": torch.atan,
                    "Abs": torch.abs, "sign": torch.sign, "conjugate": lambda x: x, "re": lambda x: x}


def _torch_function(expr: ParameterExpression, index: dict) -> tuple[Any, list[int]]:
    """``expr`` as a torch function of the parameter columns it uses (differentiable by autograd)."""
    import sympy

    params = sorted(expr.parameters, key=lambda p: index[p])
    value = expr.sympify()
    own = {s.name: s for s in value.free_symbols}  # the expression's own symbols, by name
    fn = sympy.lambdify([own.get(p.name, sympy.Symbol(p.name)) for p in params], value,
                        modules=[_TORCH_FUNCTIONS, "math"])
    return fn, [index[p] for p in params]


def _matrix(op: object) -> np.ndarray:
    return np.array(op.to_matrix(), dtype=complex)  # type: ignore[attr-defined]  (a writable copy)


class CompiledCircuit:
    """A circuit compiled for batched evaluation; see :func:`compile_circuit`."""

    def __init__(self, circuit: QuantumCircuit, dtype: torch.dtype, layout: str = "auto") -> None:
        self.layout = layout
        self.num_qubits = circuit.num_qubits
        self.parameters = list(circuit.parameters)
        self.num_parameters = len(self.parameters)
        self.dtype = dtype
        self.real_dtype = dtype.to_real()
        n = self.num_qubits
        table = _AngleTable(self.parameters)
        ops: list[_Op] = []
        pending: dict[int, list] = {}  # single-qubit gates not yet applied, per qubit (they commute across qubits)
        idx = np.arange(1 << n)
        flat, phases = _flatten(circuit)
        for op, qubits in flat:
            name = op.name  # type: ignore[attr-defined]
            if len(qubits) == 1 and name != "id":
                queue = pending.setdefault(qubits[0], [])
                if name in _PARAMETRIC:
                    cols = tuple(table.add(a, name) for a in op.params)  # type: ignore[attr-defined]
                    if name in _ADDITIVE and queue and queue[-1][0] == name:  # R(a) R(b) = R(a + b)
                        cols = (table.merge(queue.pop()[1][0], cols[0]),)
                    queue.append((name, cols))
                else:
                    queue.append(("const", torch.as_tensor(_matrix(op), dtype=dtype)))
                continue
            if name == "id":
                continue
            ops.extend(_flush(pending, dtype))
            if name == "ucry":  # the branch angles, M @ (the chain's RY angles)
                k = len(qubits) - 1
                cols = table.linear(op.params, ucry_branch_matrix(k))  # type: ignore[attr-defined]
                ops.append(_Op("ucr", qubits, "ry", None, tuple(cols)))
                continue
            if name in _PERMUTATION:
                src = torch.as_tensor(_permutation_source(_matrix(op), qubits, n, idx))
                if ops and ops[-1].kind == "perm":  # consecutive permutations compose into one
                    ops[-1].data = ops[-1].data[src]
                    ops[-1].name += "+" + name
                else:
                    ops.append(_Op("perm", qubits, name, src))
            elif name in _CONSTANT:
                mat = _matrix(op)
                if np.allclose(mat, np.diag(np.diag(mat))):
                    diag = torch.as_tensor(_full_diagonal(np.diag(mat), qubits, n, idx), dtype=dtype)
                    if ops and ops[-1].kind == "diag":
                        ops[-1].data = ops[-1].data * diag
                    else:
                        ops.append(_Op("diag", qubits, name, diag))
                else:
                    ops.append(_Op("const", qubits, name, torch.as_tensor(mat, dtype=dtype)))
            else:
                cols = tuple(table.add(a, name) for a in op.params)  # type: ignore[attr-defined]
                ops.append(_Op("param", qubits, name, None, cols))
        ops.extend(_flush(pending, dtype))
        # the parameterized single-qubit gate kinds of the fused layers
        one_q_kinds = {kind for o in ops if o.kind == "layer" for factors in (o.factors or {}).values()
                       for kind, _ in factors if kind != "const"}
        # A circuit of real gates (ry, cx, h, x, z, cz, ...) keeps real amplitudes: simulate it in real arithmetic,
        # about 3x less work than complex; expectation values are the same numbers (tested)
        self.real_path = one_q_kinds <= {"ry"} and all(_is_real(o) for o in ops)
        self.sim_dtype = self.real_dtype if self.real_path else dtype
        if self.real_path:
            for o in ops:
                _make_real(o)
        self._phase_col = [table.add(ph) for ph in phases]
        self._ops = ops
        self._sharings: dict[tuple[int, ...], _Sharing] = {}
        self._derived = [_torch_function(e, table.index) for e in table.derived]
        self._A = torch.as_tensor(table.matrix(), dtype=self.real_dtype)
        self._b = torch.as_tensor(np.array(table.consts, dtype=float), dtype=self.real_dtype)
        # the usual table: every angle reads at most one column (angle = c * value + b). Then the angles are one
        # column gather and one multiply-add: the dense (B, p) @ (p, angles) product it replaces measured about 1 ms
        # forward and backward at the 207-modality QFL (261 x 266), for 261 nonzero entries
        nonzero = self._A.numpy() != 0
        self._select = None
        if self._A.shape[0] and self._A.shape[1] and nonzero.sum(axis=1).max() <= 1:
            cols = nonzero.argmax(axis=1)
            self._select = (torch.as_tensor(cols), self._A[torch.arange(len(cols)), torch.as_tensor(cols)])

    # -- evaluation -----------------------------------------------------------------------------------------
    def _check(self, values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        if values.shape[-1:] != (self.num_parameters,) and not (values.ndim == 0 and self.num_parameters == 0):
            raise ValueError(
                f"parameter values have last dimension {tuple(values.shape[-1:])}, the circuit has "
                f"{self.num_parameters} parameters"
            )
        if not torch.isfinite(values).all():
            raise ValueError("parameter values contain NaN or inf")
        batch = tuple(values.shape[:-1])
        size = int(np.prod(batch)) if batch else 1
        return values.reshape(size, self.num_parameters).to(self.real_dtype), batch

    def statevector(self, values: torch.Tensor, *, shared: Sequence[int] = ()) -> torch.Tensor:
        """States (..., 2^n) for parameter values (..., p) in ``circuit.parameters`` order (``shared``: see
        :meth:`expectations`)."""
        flat, batch = self._check(torch.as_tensor(values))
        return self._with_phase(self._run(flat, shared), flat).reshape(*batch, 1 << self.num_qubits)

    def expectations(self, values: torch.Tensor, observables: Sequence[SparsePauliOp], *,
                     shared: Sequence[int] = ()) -> torch.Tensor:
        """Real expectation values (..., K) of K observables, all from one state evolution (without the global
        phase, which cancels in <psi|O|psi>).

        Args:
            values: Parameter values (..., p) in ``circuit.parameters`` order.
            observables: K observables.
            shared: Parameter columns that hold the same value in every row, such as trainable weights broadcast
                over a batch of inputs. Gates whose angles depend on these columns only are then built once for
                the batch instead of once per row, which is much faster; the gradient of those columns is the
                batch total and lands on the first row (exactly what an expanded weight vector needs).

        Raises:
            ValueError: Shape mismatch, NaN / inf values, or ``shared`` columns that differ between rows.
        """
        flat, batch = self._check(torch.as_tensor(values))
        state = self._run(flat, shared)
        out = pauli_expectations(state, observables, self.num_qubits)
        return out.reshape(*batch, out.shape[-1])

    def _sharing(self, shared: Sequence[int]) -> _Sharing:
        key = tuple(sorted(set(int(c) for c in shared)))
        if key not in self._sharings:
            if any(not 0 <= c < self.num_parameters for c in key):
                raise ValueError(f"shared columns {list(key)} outside 0..{self.num_parameters - 1}")
            per_row = np.ones(self.num_parameters, dtype=bool)
            per_row[list(key)] = False
            # a derived column varies per row when any parameter it reads does
            derived = np.array([bool(per_row[cols].any()) for _, cols in self._derived], dtype=bool)
            per_row = np.concatenate([per_row, derived])
            # an angle is shared when it depends on shared columns only
            angle_shared = ~(self._A.numpy()[:, per_row] != 0).any(axis=1)
            self._sharings[key] = _Sharing(key, angle_shared, self._ops, self.num_qubits, self.sim_dtype,
                                           self.layout)
        return self._sharings[key]

    def _extend(self, values: torch.Tensor) -> torch.Tensor:
        """[theta, d(theta)]: the parameter values with the derived (non-affine) angle columns appended."""
        if not self._derived:
            return values
        cols = []
        for fn, idx in self._derived:
            out = fn(*[values[:, i] for i in idx])
            cols.append(torch.as_tensor(out, dtype=values.dtype).expand(values.shape[0]))
        return torch.cat([values, torch.stack(cols, dim=-1)], dim=-1)

    def _angles(self, values: torch.Tensor) -> torch.Tensor:
        """Every gate angle of the table, (B, angles), for parameter values (B, p)."""
        if not self._A.shape[0]:
            return values.new_zeros(values.shape[0], 0)
        full = self._extend(values)
        if self._select is not None:
            cols, coeff = self._select
            return torch.addcmul(self._b, full.index_select(1, cols), coeff)
        return full @ self._A.T + self._b

    def _run(self, values: torch.Tensor, shared: Sequence[int] = ()) -> torch.Tensor:
        n, bsz = self.num_qubits, values.shape[0]
        plan = self._sharing(shared)
        held = values.index_select(1, plan.column_index) if plan.columns and bsz > 1 else None  # shared columns
        if held is not None and not torch.equal(held[1:], held[:1].expand(bsz - 1, -1)):
            raise ValueError("columns declared shared differ between rows")
        angles = self._angles(values)
        # shared angles from the first row only: one matrix for the whole batch
        first = angles[:1] if plan.columns else angles
        state = torch.zeros(bsz, 1 << n, dtype=self.sim_dtype)
        state[:, 0] = 1.0
        mats = {**plan.blocks[0].build(angles), **plan.blocks[1].build(first)}
        built: dict[tuple, torch.Tensor] = {}
        for j, op in enumerate(plan.program.mats):
            if op.kind == "const":
                mats[j] = op.data
            elif op.kind == "ucr":  # planar per row (see sv_program's "ucr" step); batch-wide (2^k, 2, 2) in NB
                once, form = j in plan.shared_params, plan.ucr_form[j]
                key = (op.name, op.angles, once, form)
                if key not in built:  # the P encodings of a QFL circuit have the same angles: built once
                    source = first if once else angles
                    # real RY matrices even for a complex state: the step then is real arithmetic on (re, im)
                    dtype = self.real_dtype if op.name == "ry" else self.sim_dtype
                    columns = plan.columns_of[j]
                    if form == "shared":
                        m = _param_matrix(op.name, [source.index_select(1, columns)], dtype).reshape(-1, 2, 2)
                    else:  # each branch angle repeated over the elements l of the planar layout it acts on
                        rest, re_im = 1 << (n - len(op.qubits)), 2 if dtype != self.sim_dtype else 1
                        if form == "bn":  # l = (control state * rest + r) * re_im + e
                            t = source.index_select(1, columns.repeat_interleave(rest * re_im))
                            m = _planar_matrix(op.name, t, dtype)
                        else:  # "nb": l = ((control state * rest + r) * B + b) * re_im + e; one flat gather
                            flat = plan.nb_index(j, source.shape[0], source.shape[1], rest, re_im)
                            m = _planar_matrix(op.name, source.reshape(1, -1).index_select(1, flat), dtype).squeeze(0)
                    built[key] = m
                mats[j] = built[key]
            elif j in plan.shared_params:  # one matrix for the batch: (d, d), bmm takes it as a stride-0 batch
                mats[j] = _param_matrix(op.name, [first[:, c] for c in op.angles], self.sim_dtype).squeeze(0)
            elif op.kind == "param":
                mats[j] = _param_matrix(op.name, [angles[:, c] for c in op.angles], self.sim_dtype)
        return Evolve.apply(plan.program, state, *(mats[j] for j in range(len(plan.program.mats))))

    def _with_phase(self, state: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Complex state including the global phase (which expectation values never need)."""
        state = state.to(self.dtype)
        angles = self._angles(values)
        phase = sum(angles[:, c] for c in self._phase_col)
        if isinstance(phase, torch.Tensor):
            state = state * torch.exp(1j * phase.to(self.dtype)).unsqueeze(-1)
        return state


def compile_circuit(circuit: QuantumCircuit, *, dtype: torch.dtype = torch.complex128,
                    layout: str = "auto") -> CompiledCircuit:
    """Compile ``circuit`` for batched, differentiable simulation.

    Args:
        circuit: A unitary circuit; gates outside :data:`SUPPORTED` are unrolled through their definitions.
        dtype: ``torch.complex128`` or ``torch.complex64``.
        layout: How shared (weight-only) gates are run (:mod:`qfl_qiskit.execution.sv_program`): "rows" keeps
            every state a row, "mixed" runs them on column-major states, "auto" (default) picks the plan with fewer
            passes over the state. The values are the same; the choice only changes speed.

    Returns:
        The compiled circuit.

    Raises:
        UnsupportedGateError: Measurements, resets, classical control, gates without a definition, or angles that
            are not affine in the parameters.
    """
    if dtype not in (torch.complex128, torch.complex64):
        raise ValueError(f"dtype must be torch.complex128 or torch.complex64, got {dtype}")
    if layout not in ("auto", "rows", "mixed"):
        raise ValueError(f"layout must be auto, rows or mixed, got {layout!r}")
    return CompiledCircuit(circuit, dtype, layout)


def pauli_expectations(
    state: torch.Tensor, observables: Sequence[SparsePauliOp] | SparsePauliOp, num_qubits: int
) -> torch.Tensor:
    """Real parts of <psi|O_k|psi> for K Pauli-sum observables, all from one state (bit-mask Pauli action, no dense
    matrices; the index permutations and sign vectors are cached per observable set).

    Args:
        state: States (..., 2^n), complex or real.
        observables: K observables on ``num_qubits`` qubits (a single ``SparsePauliOp`` counts as K = 1).
        num_qubits: n.

    Returns:
        Tensor (..., K) in the state's real dtype.

    Raises:
        ValueError: The state is not of length 2^n, or an observable acts on a different number of qubits.
    """
    if isinstance(observables, SparsePauliOp):  # iterating one would silently give its terms one by one
        observables = [observables]
    observables = list(observables)
    if state.shape[-1:] != (1 << num_qubits,):
        raise ValueError(f"state has last dimension {tuple(state.shape[-1:])}, expected 2^{num_qubits}")
    batch = tuple(state.shape[:-1])
    if not observables:
        return torch.zeros(*batch, 0, dtype=state.real.dtype)
    out = _pauli_expectations(state.reshape(-1, 1 << num_qubits), observables, num_qubits)
    return out.reshape(*batch, len(observables))


def _planar_matrix(name: str, angles: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Matrices of one rotation per angle, planar: (B, 2, 2, L) for angles (B, L)."""
    if name == "ry":  # [[c, -s], [s, c]] stacked in place: no transpose copy
        c, s = torch.cos(angles * 0.5), torch.sin(angles * 0.5)
        return torch.stack([c, -s, s, c], dim=1).unflatten(1, (2, 2)).to(dtype)
    return _param_matrix(name, [angles], dtype).permute(0, 2, 3, 1).contiguous()


def _is_real(op: _Op) -> bool:
    if op.kind in ("param", "ucr"):
        return op.name == "ry"
    tensors = [op.data] if op.kind in ("diag", "const") else []
    if op.kind == "layer":
        tensors = [payload for fs in op.factors.values() for kind, payload in fs if kind == "const"]
    return all(bool((t.imag == 0).all()) for t in tensors if t is not None and t.is_complex())


def _make_real(op: _Op) -> None:
    if op.kind in ("diag", "const"):
        op.data = op.data.real.contiguous()
    if op.kind == "layer":
        op.factors = {q: [(k, p.real.contiguous() if k == "const" else p) for k, p in fs]
                      for q, fs in op.factors.items()}


# -- gate application ---
def _flush(pending: dict[int, list], dtype: torch.dtype) -> list[_Op]:
    """Pending single-qubit gates as one "layer" op (the planner splits it into windows)."""
    ops = [_Op("layer", tuple(sorted(pending)), "fused", factors=dict(pending))] if pending else []
    pending.clear()
    return ops


def _plan(ops: list[_Op], n: int, is_shared) -> Program:
    """The state-evolution program of the logical ops (see :mod:`qfl_qiskit.execution.sv_program`)."""
    planner = Planner(n, is_shared)
    for op in ops:
        if op.kind == "layer":
            factors = op.factors or {}
            planner.layer(factors, n if n <= _WHOLE_LAYER_QUBITS else _WINDOW,
                          lambda qs, f=factors: _Op("block", qs, "fused", factors={q: f[q] for q in qs}))
        elif op.kind == "perm":
            planner.permutation(op.data.numpy())
        elif op.kind == "diag":
            planner.diagonal(op.data)
        elif op.kind == "ucr":
            planner.uniform(op)
        else:
            planner.matrix(op)
    return planner.finish()


class _Sharing:
    """How one set of shared parameter columns splits the gates: angle columns and block groups built once per
    batch (shared) or once per row, and the program that runs them (shared gates in layout NB)."""

    def __init__(self, columns: tuple[int, ...], angle_shared: np.ndarray, ops: list[_Op], n: int,
                 dtype: torch.dtype, layout: str) -> None:
        self.columns = list(columns)
        self.column_index = torch.as_tensor(self.columns, dtype=torch.long)
        shared = angle_shared if columns else np.zeros_like(angle_shared)

        def is_shared(op: _Op) -> bool:
            if op.kind in ("param", "ucr"):
                return bool(shared[list(op.angles)].all())
            if op.kind == "block":
                return all(shared[list(payload)].all() for fs in op.factors.values() for kind, payload in fs
                           if kind != "const")
            return True  # constant matrices

        # shared gates may run in layout NB (no relabelling within a layer, but a transpose to get there); keep that
        # plan only when it makes fewer passes over the state than the all-BN one (it does on wide weight layers,
        # not on small or input-heavy circuits such as the default QFL model)
        plans = [_plan(ops, n, lambda op: False)] if layout != "mixed" else []
        if layout != "rows":
            plans.append(_plan(ops, n, is_shared))
        self.program = min(plans, key=lambda p: len(p.steps))
        mats = self.program.mats
        # built once for the batch (their gradient is the batch total, on the first row)
        self.shared_params = {j for j, op in enumerate(mats) if op.kind in ("param", "ucr") and is_shared(op)}
        self.columns_of = {j: torch.as_tensor(op.angles, dtype=torch.long) for j, op in enumerate(mats)
                           if op.kind == "ucr"}
        # how each uniformly controlled gate's matrices are laid out: "shared" (2^k, 2, 2) in a batched matmul,
        # else planar for a "ucr" step in layout "bn" or "nb"
        self.ucr_form = {step[1]: "shared" if step[0] == "mat" else ("nb" if step[2] else "bn")
                         for step in self.program.steps if step[0] in ("mat", "ucr") and mats[step[1]].kind == "ucr"}
        self._nb_index: dict[tuple[int, int, int], torch.Tensor] = {}
        self.blocks = tuple(_BlockPlan([(i, op) for i, op in enumerate(mats) if op.kind == "block"
                                        and bool(is_shared(op)) == flag], dtype, flag) for flag in (False, True))

    def nb_index(self, j: int, bsz: int, width: int, rest: int, re_im: int) -> torch.Tensor:
        """Flat positions in the (B, width) angle table of the angle at each element of gate j's planar NB
        matrices: element ((c * rest + r) * B + b) * re_im + e reads row b, column ``columns_of[j][c]``."""
        key = (j, bsz, width)
        if key not in self._nb_index:
            index = self.columns_of[j].view(-1, 1, 1, 1) + (torch.arange(bsz) * width).view(1, 1, -1, 1)
            self._nb_index[key] = index.expand(-1, rest, -1, re_im).reshape(-1)
        return self._nb_index[key]


#: -i times the Pauli matrix of each rotation: R(t) = cos(t/2) I + sin(t/2) K.
_GENERATORS = {"rx": [[0, -1j], [-1j, 0]], "ry": [[0, -1], [1, 0]], "rz": [[-1j, 0], [0, 1j]]}


class _BlockPlan:
    """How the matrices of one side's block ops are built: the blocks whose gates are shared by the batch (from the
    first row's angles, once per batch) or those built per row.

    Why this shape: at QNN sizes the cost is the number of torch ops, not their arithmetic (a default QFL step
    recorded about 2,400). So, whatever the number of blocks: every rx / ry / rz matrix of the side is
    cos(t/2) I + sin(t/2) K in one pass over all their angles; each window position's chain of single-qubit
    factors (a "slot") is multiplied out for all slots of the same factor kinds at once; and each group of blocks
    of one width is one gather per position and one Kronecker product per extra qubit.
    """

    def __init__(self, blocks: list[tuple[int, _Op]], dtype: torch.dtype, shared: bool) -> None:
        self.shared = shared
        # a block of constant gates only (the QFL's Hadamards) is one fixed matrix, made here once
        self.fixed: dict[int, torch.Tensor] = {}
        for i, op in blocks:
            if all(kind == "const" for q in op.qubits for kind, _ in op.factors[q]):
                full = None
                for q in op.qubits:  # least significant first
                    mat = None
                    for _, m in op.factors[q]:
                        mat = m if mat is None else m @ mat
                    full = mat if full is None else torch.kron(mat, full)
                self.fixed[i] = full
        blocks = [(i, op) for i, op in blocks if i not in self.fixed]
        rotations: list[tuple[str, int]] = []  # (gate, angle column) of every rx / ry / rz factor
        position: dict[tuple[str, int], int] = {}
        chains: dict[tuple[str, ...], list[list]] = {}  # factor kinds -> slots (their factor lists)
        slot_of: dict[tuple[int, int], tuple[tuple[str, ...], int]] = {}
        for i, op in blocks:
            for pos, q in enumerate(op.qubits):
                factors = op.factors[q]
                sig = tuple(kind for kind, _ in factors)
                slot_of[(i, pos)] = (sig, len(chains.setdefault(sig, [])))
                chains[sig].append(factors)
        # rotation rows chain by chain, factor by factor: each factor's rows are then one slice of the table
        for sig, slots in chains.items():
            for j, kind in enumerate(sig):
                for slot in slots:
                    if kind in _GENERATORS and (kind, slot[j][1][0]) not in position:
                        position[(kind, slot[j][1][0])] = len(rotations)
                        rotations.append((kind, slot[j][1][0]))
        self.rot_index = torch.as_tensor([c for _, c in rotations], dtype=torch.long)
        self.eye = torch.eye(2, dtype=dtype)
        gens = np.array([_GENERATORS[kind] for kind, _ in rotations]).reshape(-1, 1, 2, 2)
        self.gens = torch.as_tensor(gens.real if not dtype.is_complex else gens, dtype=dtype)
        # per chain: per factor, a stacked constant (S, 1, 2, 2), rotation rows to gather, or (gate, columns)
        self.chains: list[list[object]] = []
        offsets, total = {}, 0
        for sig, slots in chains.items():
            offsets[sig], total = total, total + len(slots)
            factors: list[object] = []
            for j, kind in enumerate(sig):
                payloads = [slot[j][1] for slot in slots]
                if kind == "const":
                    factors.append(torch.stack(payloads).unsqueeze(1))
                elif kind in _GENERATORS:
                    rows = [position[(kind, p[0])] for p in payloads]
                    contiguous = rows == list(range(rows[0], rows[0] + len(rows)))
                    factors.append(slice(rows[0], rows[0] + len(rows)) if contiguous
                                   else torch.as_tensor(rows, dtype=torch.long))
                else:  # p, u: built by name
                    factors.append((kind, [list(p) for p in payloads]))
            self.chains.append(factors)
        # blocks of one width: per position (least significant first) the slots of the members
        widths: dict[int, list[int]] = {}
        for i, op in blocks:
            widths.setdefault(len(op.qubits), []).append(i)
        self.groups = [(members, [torch.as_tensor([offsets[slot_of[(i, pos)][0]] + slot_of[(i, pos)][1]
                                                   for i in members], dtype=torch.long) for pos in range(w)])
                       for w, members in widths.items()]

    def build(self, angles: torch.Tensor) -> dict[int, torch.Tensor]:
        """Block op index -> its matrix: (d, d) on the shared side, (B, d, d) per row."""
        if not self.groups:
            return dict(self.fixed)
        bsz = 1 if self.shared else angles.shape[0]  # a shared side's blocks read shared columns only
        rot = None
        if self.rot_index.numel():
            half = (angles.index_select(1, self.rot_index) * 0.5).t().reshape(-1, bsz, 1, 1)  # (G, B, 1, 1)
            rot = torch.cos(half) * self.eye + torch.sin(half) * self.gens
        parts = []
        for factors in self.chains:
            mat = None
            for f in factors:
                if isinstance(f, slice):  # rows in order: a view (its backward is a cheap slice, not an index_add)
                    m = rot[f]  # type: ignore[index]  (S, B, 2, 2)
                elif isinstance(f, torch.Tensor) and f.dtype == torch.long:
                    m = rot.index_select(0, f)  # type: ignore[union-attr]  (S, B, 2, 2)
                elif isinstance(f, torch.Tensor):
                    m = f  # (S, 1, 2, 2)
                else:
                    name, cols = f  # type: ignore[misc]
                    m = torch.stack([_param_matrix(name, [angles[:, c] for c in cs], self.eye.dtype) for cs in cols])
                mat = m if mat is None else m @ mat
            parts.append(mat.expand(-1, bsz, 2, 2) if mat.shape[1] != bsz else mat)  # type: ignore[union-attr]
        slots = torch.cat(parts) if len(parts) > 1 else parts[0]  # (slots, B, 2, 2)
        out: dict[int, torch.Tensor] = dict(self.fixed)
        for members, positions in self.groups:
            full = None
            for index in positions:
                m = slots.index_select(0, index)  # (NB, B, 2, 2)
                full = m if full is None else _kron(m, full)
            if self.shared:
                full = full.squeeze(1)  # type: ignore[union-attr]
            # unbind, not full[k]: indexing's backward would allocate and fill a full-size zero tensor per block
            for i, part in zip(members, full.unbind(0)):  # type: ignore[union-attr]
                out[i] = part
        return out
