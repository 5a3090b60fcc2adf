"""IBM Runtime adapter: the client-side ``executor_estimator.Estimator`` of qiskit-ibm-runtime as a toolkit
``BaseEstimatorV2``.

With a fake backend this runs in Runtime's local testing mode (offline, on Aer, the backend's noise); with a real
backend from ``QiskitRuntimeService`` it submits jobs. All PUBs of one ``run`` go in ONE Runtime job. Runtime
accepts ISA circuits only: an ISA circuit (with laid-out observables, Qiskit's convention) is sent as it is; a
logical circuit is transpiled once per backend (best of a small seed sweep, see :mod:`qfl_qiskit.transpile`) and
cached, and its observables are laid out through that transpilation here.

qiskit-ibm-runtime 0.51's executor Estimator applies resilience, twirling and dynamical-decoupling options
client-side, in local testing mode too, and its default resilience level turns measurement twirling on: pass
``options={"resilience_level": 0}`` (or explicit resilience options) to say exactly what runs.
"""

from __future__ import annotations

from typing import Any

from qiskit import QuantumCircuit

from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.base import Estimate, QflEstimator, Task, from_v2, layout_observables, v2_observables
from qfl_qiskit.execution.compact import CircuitCache
from qfl_qiskit.transpile import resolve_backend, transpile_sweep

#: Runtime's own default precision (target standard error) when none is given.
DEFAULT_PRECISION = 1 / 64


class RuntimeEstimator(QflEstimator):
    """Expectation values from qiskit-ibm-runtime's (non-deprecated) client-side Estimator.

    Args:
        backend: A backend name (``fake_<device>`` runs in local testing mode) or a ``BackendV2``.
        precision: Target standard error per expectation value when a PUB gives none (Runtime picks the shots).
        seed: Simulator seed in local testing mode (reproducible values); ignored on hardware.
        options: Extra ``EstimatorOptions`` fields as a dict (e.g. ``{"resilience": {...}}``); applied
            client-side, in local testing mode too.
        transpile_seeds: Seeds swept when a logical circuit has to be transpiled.
        mode: Job, ``Batch`` or ``Session`` object to run in; default the backend itself (job mode).
    """

    name = "runtime"

    def __init__(
        self,
        backend: str | Any,
        *,
        precision: float = DEFAULT_PRECISION,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        transpile_seeds: int = 4,
        mode: Any = None,
    ) -> None:
        if not precision > 0:
            raise ExecutionError(f"precision must be > 0 on Runtime (got {precision}); use the exact or Aer estimator")
        self.backend = resolve_backend(backend) if isinstance(backend, str) else backend
        self.precision = precision
        self.default_precision = precision
        self.seed = seed
        self.options = dict(options or {})
        for key, value in self.options.items():  # a bad option block is refused here, not after a job has run
            if isinstance(value, dict):
                check_options(key, value)
        self.transpile_seeds = transpile_seeds
        self.mode = mode if mode is not None else self.backend
        self._isa = CircuitCache()
        self.last_job_ids: list[str] = []

    def isa(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """``circuit`` itself if already transpiled (has a layout and fits the backend), else its cached ISA form."""
        if circuit.layout is not None and circuit.num_qubits == self.backend.num_qubits:
            return circuit
        return self._isa.get(circuit, lambda c: transpile_sweep(c, self.backend, seeds=self.transpile_seeds)[0])

    def _primitive(self) -> Any:
        from qiskit_ibm_runtime.executor_estimator import Estimator

        est = Estimator(mode=self.mode)
        if self.seed is not None:
            est.options.simulator.seed_simulator = self.seed
        for key, value in self.options.items():
            _set_option(est.options, key, value)
        return est

    def _estimate(self, tasks: list[Task]) -> list[Estimate]:
        """All tasks in one Runtime job; logical circuits transpiled and their observables laid out."""
        v2_pubs = []
        for task in tasks:
            isa = self.isa(task.circuit)
            ops = task.observables if isa is task.circuit else layout_observables(isa, task.observables)
            v2_pubs.append((isa, v2_observables(ops, len(task.batch_shape)), task.values,
                            task.precision or self.precision))
        try:
            job = self._primitive().run(v2_pubs)
        except ValueError as exc:  # IBMInputValueError: refused before anything ran (e.g. PEA without a noise model)
            raise ExecutionError(f"Runtime refused the job: {' '.join(str(exc).split())}") from None
        self.last_job_ids = [job.job_id()]
        result = job.result()
        out = []
        for res in result:
            meta = {"estimator": self.name, "backend": self.backend.name, "job_id": job.job_id(),
                    "shots": executor_shots(res.metadata)}
            out.append(Estimate(from_v2(res.data.evs), from_v2(res.data.stds), meta))
        return out

    def describe(self) -> dict[str, Any]:
        """Settings for records."""
        return {"estimator": self.name, "backend": self.backend.name, "precision": self.precision,
                "seed": self.seed, "options": self.options, "runtime_options": resolved_options(self._primitive())}


def resolved_options(estimator: Any) -> dict[str, Any]:
    """Every option a Runtime Estimator will run with, defaults resolved (``finalize_options``): the resilience
    level's measurement twirling, shots per randomization, DD, ZNE settings. For records: what ran, not only what
    was asked."""
    try:
        return estimator.finalize_options().model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001  (an option combination Runtime itself cannot finalize)
        return {"unresolved": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}


def executor_shots(metadata: Any) -> Any:
    """Shots from a Runtime executor result's metadata: ``metadata["executor"]`` is a dict, or under ZNE a list
    of dicts (one per noise factor), whose shots are returned as a list."""
    executor = metadata.get("executor") if isinstance(metadata, dict) else None
    if isinstance(executor, dict):
        return executor.get("shots")
    if isinstance(executor, list):
        return [e.get("shots") if isinstance(e, dict) else None for e in executor]
    return None


def _set_option(options: Any, key: str, value: Any) -> None:
    """Set a (nested) Runtime option, with one clear error for a name Runtime does not have."""
    if isinstance(value, dict):
        target = getattr(options, key, None)
        if target is None:
            raise ExecutionError(f"unknown Runtime Estimator option '{key}'")
        for k, v in value.items():
            _set_option(target, k, v)
        return
    if not hasattr(options, key):
        raise ExecutionError(f"unknown Runtime Estimator option '{key}'")
    try:
        setattr(options, key, value)
    except (ValueError, TypeError) as exc:  # Runtime's options are pydantic models: a wrong value or type
        errors = getattr(exc, "errors", None)
        msg = errors()[0]["msg"] if callable(errors) else " ".join(str(exc).split())
        raise ExecutionError(f"Runtime Estimator option '{key}' = {value!r}: {msg}") from None


def check_options(section: str, values: dict[str, Any] | None) -> None:
    """Validate a block of Runtime Estimator options (e.g. a job spec's ``[resilience]``) offline, before any file
    is written or job submitted; raises :class:`ExecutionError` naming the first bad option."""
    if not values:
        return
    from qiskit_ibm_runtime.options_models.estimator import EstimatorOptions

    _set_option(EstimatorOptions(), section, values)
    factors = (values.get("zne") or {}).get("noise_factors") if isinstance(values.get("zne"), dict) else None
    if factors is not None and max(factors) > 100:  # folding 1e9 times builds circuits that never finish
        raise ExecutionError(f"Runtime Estimator option 'zne.noise_factors' = {list(factors)}: keep the factors "
                             "at most 100")
