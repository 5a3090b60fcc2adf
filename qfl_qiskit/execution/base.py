"""Qiskit's V2 estimator interface for every estimator of the toolkit, over one batched internal call.

Every estimator here is a ``qiskit.primitives.BaseEstimatorV2``: ``run(pubs, *, precision=None)`` takes any
``EstimatorPubLike`` (Qiskit's own ``EstimatorPub.coerce``: Pauli strings, ``SparsePauliOp``, dicts, observable
arrays of any shape, ``{Parameter: values}`` dicts, ``BindingsArray``, a precision as the fourth element) and
returns a job whose ``result()`` is a ``PrimitiveResult`` of ``PubResult`` with ``data.evs`` / ``data.stds``
broadcast exactly as ``StatevectorEstimator`` does, and metadata (``target_precision`` and what ran).

Observables follow Qiskit's convention: for a transpiled (ISA) circuit they act on its physical qubits (lay them
out with :func:`layout_observables`, i.e. ``SparsePauliOp.apply_layout``), as ``StatevectorEstimator``, Aer's and
Runtime's ``EstimatorV2`` expect.

Inside, a PUB becomes one :class:`Task`: the circuit, the distinct observables as a flat list of K operators and
the bindings as a (B, p) array; each estimator evaluates all tasks of a call in one batched ``_estimate`` (the
exact simulator in one torch pass per task, Aer in one primitive call, Runtime in one job) and the (B, K) values
are gathered into the PUB's broadcast shape. Model code (:class:`~qfl_qiskit.qnn.QuantumLayer`, mitigation,
studies) calls :func:`estimate` with tasks directly, which uses that path on our estimators and plain V2 PUBs on
anyone else's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.primitives import BaseEstimatorV2, PrimitiveJob, PrimitiveResult
from qiskit.primitives.containers import DataBin, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError


@dataclass(frozen=True)
class Task:
    """One batched evaluation: K observables on the circuit's qubits, bindings of shape (..., p).

    Attributes:
        circuit: The circuit (logical, or ISA with laid-out observables).
        observables: K operators on ``circuit.num_qubits`` qubits.
        values: Parameter values (..., p) in ``circuit.parameters`` order.
        precision: Target standard error (None or 0: the estimator's own setting).
    """

    circuit: QuantumCircuit
    observables: tuple[SparsePauliOp, ...]
    values: np.ndarray
    precision: float | None = None

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Shape of the bindings without the parameter axis."""
        return self.values.shape[:-1]


@dataclass(frozen=True)
class Estimate:
    """Expectation values ``evs`` (..., K) of a :class:`Task`, their standard errors ``stds``, and metadata."""

    evs: np.ndarray
    stds: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def as_task(circuit: QuantumCircuit, observables: SparsePauliOp | Iterable[SparsePauliOp], values: Any = None, *,
            precision: float | None = None) -> Task:
    """Validate one task.

    Raises:
        ExecutionError: Observables on the wrong number of qubits, a wrong parameter count, or NaN / inf values.
    """
    if isinstance(observables, SparsePauliOp):
        observables = (observables,)
    observables = tuple(observables)
    if not observables:
        raise ExecutionError("a PUB needs at least one observable")
    for op in observables:
        if not isinstance(op, SparsePauliOp):
            raise ExecutionError(f"observables must be SparsePauliOp, got {type(op).__name__}")
        if op.num_qubits != circuit.num_qubits:
            hint = ("; lay logical observables out with layout_observables(circuit, observables) "
                    "(SparsePauliOp.apply_layout)" if circuit.layout is not None else "")
            raise ExecutionError(f"observable on {op.num_qubits} qubits for circuit '{circuit.name}' of "
                                 f"{circuit.num_qubits} qubits{hint}")
    values = np.zeros((0,)) if values is None else np.asarray(values, dtype=float)
    if values.ndim == 0:
        values = values.reshape(1)
    p = circuit.num_parameters
    if values.shape[-1] != p:
        raise ExecutionError(
            f"parameter values have {values.shape[-1]} columns but circuit '{circuit.name}' has {p} parameters")
    if not np.all(np.isfinite(values)):
        raise ExecutionError("parameter values contain NaN or inf; check the inputs and weights fed to the circuit")
    return Task(circuit, observables, values, precision)


def layout_observables(circuit: QuantumCircuit, observables: Iterable[SparsePauliOp]) -> tuple[SparsePauliOp, ...]:
    """Observables on a circuit's LOGICAL qubits, laid out for the circuit (identity when it has no layout).

    The one place where the toolkit's logical observables meet Qiskit's convention for ISA circuits.
    """
    observables = tuple(observables)
    if circuit.layout is None:
        return observables
    return tuple(op.apply_layout(circuit.layout) for op in observables)


def logical_num_qubits(circuit: QuantumCircuit) -> int:
    """The number of logical qubits of a transpiled circuit (its own width when it has no layout)."""
    if circuit.layout is None:
        return circuit.num_qubits
    return len(circuit.layout.final_index_layout())


def _operator(term: dict[str, complex] | Any, num_qubits: int) -> SparsePauliOp:
    items = list(term.items()) if isinstance(term, dict) else term
    if not items:
        return SparsePauliOp("I" * num_qubits, coeffs=[0.0])
    return SparsePauliOp.from_list(items, num_qubits=num_qubits)


def _task_from_pub(pub: EstimatorPub) -> tuple[Task, np.ndarray, np.ndarray]:
    """A PUB as a :class:`Task` over its distinct bindings and observables, plus the index arrays (of the PUB's
    broadcast shape) that gather the (B, K) values back into that shape."""
    circuit = pub.circuit
    obs_shape = pub.observables.shape
    terms = pub.observables.ravel().tolist()
    observables = tuple(_operator(t, circuit.num_qubits) for t in terms)
    bindings = pub.parameter_values
    values = bindings.as_array(circuit.parameters) if circuit.num_parameters else np.zeros(bindings.shape + (0,))
    values = np.asarray(values, dtype=float).reshape(int(np.prod(bindings.shape, dtype=int)), circuit.num_parameters)
    b_index = np.arange(values.shape[0]).reshape(bindings.shape)
    o_index = np.arange(len(observables)).reshape(obs_shape)
    b_index, o_index = np.broadcast_arrays(b_index, o_index)
    precision = pub.precision if pub.precision else None
    return as_task(circuit, observables, values, precision=precision), b_index, o_index


class QflEstimator(BaseEstimatorV2):
    """Base of the toolkit's estimators: Qiskit's V2 ``run`` over the batched :meth:`_estimate`.

    Subclasses implement ``_estimate(tasks) -> list[Estimate]`` (all tasks of one call together: one primitive
    call or job) and set ``name``; ``default_precision`` is used when neither the PUB nor ``run`` gives one.
    """

    name = "estimator"
    default_precision: float = 0.0

    def run(self, pubs: Iterable[Any], *, precision: float | None = None) -> PrimitiveJob:
        """Estimate expectation values of every PUB (Qiskit's ``EstimatorPubLike``) in one call.

        Args:
            pubs: PUBs ``(circuit, observables[, parameter_values[, precision]])`` in any form Qiskit accepts.
            precision: Target standard error for PUBs that give none (default ``default_precision``).

        Returns:
            A job; ``job.result()`` is a ``PrimitiveResult`` of ``PubResult`` with ``data.evs`` and ``data.stds``
            of each PUB's broadcast shape.
        """
        if precision is None:
            precision = self.default_precision
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        job = PrimitiveJob(self._run_pubs, coerced)
        job._submit()
        return job

    def _run_pubs(self, pubs: list[EstimatorPub]) -> PrimitiveResult:
        prepared = [_task_from_pub(pub) for pub in pubs]
        estimates = self._estimate([t for t, _, _ in prepared])
        results = []
        for pub, (task, b_index, o_index), est in zip(pubs, prepared, estimates):
            evs = np.asarray(est.evs, dtype=float).reshape(task.values.shape[0], len(task.observables))
            stds = np.asarray(est.stds, dtype=float).reshape(evs.shape)
            data = DataBin(evs=evs[b_index, o_index], stds=stds[b_index, o_index], shape=pub.shape)
            meta = {"target_precision": pub.precision, "circuit_metadata": pub.circuit.metadata, **est.metadata}
            results.append(PubResult(data, metadata=meta))
        return PrimitiveResult(results, metadata={"version": 2})

    def _estimate(self, tasks: list[Task]) -> list[Estimate]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Settings for records."""
        return {"estimator": self.name}


def estimate(estimator: Any, tasks: Sequence[Task | tuple], *, precision: float | None = None) -> list[Estimate]:
    """Evaluate tasks ``(circuit, observables, values (..., p))`` with ANY V2 estimator in ONE ``run`` call.

    Our estimators take the batched path directly; any other ``BaseEstimatorV2`` (Qiskit's
    ``StatevectorEstimator``, Aer's or Runtime's ``EstimatorV2``) gets one V2 PUB per task with observables
    shaped (K, 1, ..., 1), so its result (K, ...) is moved to (..., K). Observables are on the circuit's qubits
    (laid out for ISA circuits).

    Args:
        estimator: The estimator.
        tasks: :class:`Task` objects or ``(circuit, observables, values)`` tuples.
        precision: Target standard error for tasks that give none.

    Returns:
        One :class:`Estimate` per task, evs and stds of shape (..., K).
    """
    checked = [t if isinstance(t, Task) else as_task(*t) for t in tasks]
    if precision is not None:
        checked = [t if t.precision is not None else Task(t.circuit, t.observables, t.values, precision)
                   for t in checked]
    if isinstance(estimator, QflEstimator):
        return estimator._estimate(checked)
    if not isinstance(estimator, BaseEstimatorV2):
        raise ExecutionError(f"{type(estimator).__name__} is not a Qiskit V2 estimator (BaseEstimatorV2)")
    pubs = []
    for t in checked:
        pub = (t.circuit, v2_observables(t.observables, len(t.batch_shape)), t.values)
        pubs.append(pub + ((t.precision,) if t.precision is not None else ()))
    result = estimator.run(pubs).result()
    return [Estimate(from_v2(r.data.evs), from_v2(np.broadcast_to(r.data.stds, np.shape(r.data.evs))),
                     dict(r.metadata)) for r in result]


def v2_observables(observables: Sequence[SparsePauliOp], batch_ndim: int) -> np.ndarray:
    """Observables shaped (K, 1, ..., 1) so that a V2 primitive broadcasts them against values (..., p)."""
    ops = list(observables)
    arr = np.empty(len(ops), dtype=object)
    for i, op in enumerate(ops):  # one by one: a slice assignment would turn operators into matrices
        arr[i] = op
    return arr.reshape((len(ops),) + (1,) * batch_ndim)


def from_v2(array: np.ndarray) -> np.ndarray:
    """A V2 result array of shape (K, ...) as (..., K)."""
    return np.moveaxis(np.asarray(array, dtype=float), 0, -1)
