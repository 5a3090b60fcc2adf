"""Runtime jobs: transpile, estimate the cost, submit (job / batch / session), record before waiting, fetch later.

Flow of :func:`submit`: the logical PUBs are transpiled once per distinct circuit for the backend (ISA), the cost
is estimated (:func:`estimate_cost`) and checked against ``max_qpu_seconds`` (refused before anything is written),
QPY and parameter values are saved, the job is submitted with bounded retry, and the record with the job ids is
written atomically RIGHT AFTER the service returns them and BEFORE waiting. Then the result is stored
(qiskit-ibm-runtime's JSON encoding) and the record gets a ``DONE`` (or ``ERROR``) status entry.

Fetching after the submitting process died (:func:`fetch`):

- real backends: the job is looked up by id through ``QiskitRuntimeService`` and its result stored;
- fake backends (local testing mode): a local job lives in a thread of the submitting process, its id is a random
  UUID that no service can find later (checked with qiskit-ibm-runtime 0.51: ``LocalRuntimeJob`` has no store).
  If the process died before storing the result, :func:`fetch` re-runs the identical job from the saved ISA QPY,
  values, observables, shots, resilience options and simulator seed. The simulator is seeded (and so are the
  client-side TREX / ZNE / twirling circuits of the executor Estimator, checked with qiskit-ibm-runtime 0.51), so
  the values are identical to the lost run's (a test checks this across processes). The record notes
  ``recovered_by: "seeded local re-run"``.
  This recovery is for fake backends only; a real job is never re-submitted by ``fetch``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.base import Estimate, from_v2, layout_observables, v2_observables
from qfl_qiskit.execution.runtime import executor_shots, resolved_options
from qfl_qiskit.runtime import records as store
from qfl_qiskit.runtime.cost import (  # noqa: F401  (re-exported: part of the job API)
    DEFAULT_REP_DELAY,
    CostLimitError,
    check_budget,
    estimate_cost,
    shots_per_binding,
)
from qfl_qiskit.runtime import service as rt

RECORDS_DIR = Path("runtime_jobs/records")


class JobFailedError(ExecutionError):
    """The job failed or was cancelled; its record holds the error."""


@dataclass(frozen=True)
class JobInputs:
    """What a job runs: logical PUBs ``(circuit, observables, values (..., p))`` and facts for the record.

    Attributes:
        pubs: Logical PUBs; observables on the circuit's logical qubits.
        specs: Specs for the record (pydantic specs or JSON data), e.g. ``{"job": ..., "circuit": ...}``.
        info: JSON-ready facts about the inputs (kind, model folder, sample count...).
    """

    pubs: list[tuple[QuantumCircuit, tuple[SparsePauliOp, ...], np.ndarray]]
    specs: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What :func:`submit` did: the record (as last written), its path, and the result if it finished."""

    record: dict[str, Any]
    path: Path | None
    result: Any = None


def transpile_pubs(inputs: JobInputs, backend: Any, *,
                   seeds: int) -> list[tuple[QuantumCircuit, np.ndarray, np.ndarray]]:
    """ISA PUBs ``(isa_circuit, observables (K, 1.., 1), values)``: each distinct circuit transpiled once."""
    from qfl_qiskit.transpile import transpile_sweep

    cache: dict[int, QuantumCircuit] = {}
    out = []
    for circuit, observables, values in inputs.pubs:
        if id(circuit) not in cache:
            cache[id(circuit)] = transpile_sweep(circuit, backend, seeds=seeds)[0]
        isa = cache[id(circuit)]
        mapped = layout_observables(isa, observables)
        values = np.asarray(values, dtype=float)
        out.append((isa, v2_observables(mapped, values.ndim - 1), values))
    return out


@dataclass(frozen=True)
class JobSettings:
    """How a job runs on Runtime: backend, execution mode, shots or precision, seed, options.

    Built from a job spec (:meth:`from_spec`) or from a training spec's ``[execution]``; the same settings
    make the estimator, the cost estimate and the record.

    Attributes:
        backend: The backend object (a fake backend runs in local testing mode).
        mode: ``job``, ``batch`` or ``session``.
        max_time: Wall-time limit of a batch or session (seconds).
        precision: Target standard error per value (None when ``shots`` is given).
        shots: Shots per binding and basis (None: from ``precision``).
        seed: Simulator seed (local testing mode only; None on hardware).
        resilience: A ``resilience`` options block (job specs), applied last.
        options: Other ``EstimatorOptions`` fields (``resilience_level``, ``twirling``, ...).
        layer_noise: Learned layer noise for PEA (:func:`~qfl_qiskit.runtime.service.maps_to_json`), attached
            to every job's estimator.
    """

    backend: Any
    mode: str = "batch"
    max_time: int | None = None
    precision: float | None = 1 / 64
    shots: int | None = None
    seed: int | None = None
    resilience: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    layer_noise: list[dict[str, Any]] | None = None

    @classmethod
    def from_spec(cls, spec: Any, backend: Any) -> JobSettings:
        """The settings of a :class:`~qfl_qiskit.specs.job.JobSpec`."""
        return cls(backend=backend, mode=spec.mode, max_time=spec.max_time, precision=spec.effective_precision,
                   shots=spec.shots, seed=spec.seed if rt.is_local(backend) else None, resilience=spec.resilience)

    @property
    def local(self) -> bool:
        """True for local testing mode (a fake backend)."""
        return rt.is_local(self.backend)

    def estimator(self, mode_obj: Any = None, *, seed: int | None = None) -> Any:
        """Runtime's executor Estimator in ``mode_obj`` (default the backend) with these options."""
        return rt.make_estimator(self.backend if mode_obj is None else mode_obj, shots=self.shots,
                                 seed=self.seed if seed is None else seed, resilience=self.resilience,
                                 options=self.options)

    def run(self, v2_pubs: Sequence[tuple], mode_obj: Any = None) -> Any:
        """Submit ``v2_pubs`` as one job with these settings (the learned layer noise attached); returns the job."""
        est = rt.attach_layer_noise(self.estimator(mode_obj), v2_pubs, self.layer_noise)
        return est.run(list(v2_pubs), precision=self.precision)

    def resolved(self) -> dict[str, Any]:
        """Every option the estimator runs with, Runtime's defaults resolved (for records)."""
        return resolved_options(self.estimator())

    def executed(self) -> dict[str, Any]:
        """Shots Runtime really runs per binding and basis (:func:`~qfl_qiskit.runtime.service.executed_shots`)."""
        return rt.executed_shots(self.resolved(), shots_per_binding(self.precision, self.shots))

    def record_options(self) -> dict[str, Any]:
        """The ``options`` block of a job record: what was asked and what Runtime resolved it to."""
        return {"precision": self.precision, "shots": self.shots, "seed": self.seed, "resilience": self.resilience,
                "runtime": self.options, "runtime_options": self.resolved(), "shots_executed": self.executed(),
                "layer_noise": self.layer_noise}


def cost_of(v2_pubs: Sequence[tuple], settings: JobSettings) -> dict[str, Any]:
    """:func:`estimate_cost` with the shots the settings make Runtime run."""
    return estimate_cost(v2_pubs, settings.backend, shots=shots_per_binding(settings.precision, settings.shots),
                         executed=settings.executed())


def prepare(v2_pubs: Sequence[tuple], settings: JobSettings, *, records_dir: Path, record_id: str,
            specs: dict[str, Any], info: dict[str, Any], cost: dict[str, Any], dry_run: bool = False,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the record of a job about to be submitted (``PREPARED``) with its ISA QPY and values, all or none.

    Returns:
        The record.
    """
    from qfl_qiskit.atomic import Stage
    from qfl_qiskit.results.records import provenance
    from qfl_qiskit.transpile import calibration_time

    stage = Stage()  # the record (first) and its artifacts are written together: no orphan file on a kill
    qpy_name, qpy_hash = store.write_circuits(records_dir, record_id, [p[0] for p in v2_pubs], stage=stage)
    values_name, values_hash = store.write_values(records_dir, record_id, [p[2] for p in v2_pubs], stage=stage)
    record: dict[str, Any] = {
        "record_type": "runtime_job", "record_id": record_id, "created": store.now(), "dry_run": dry_run,
        "backend": settings.backend.name, "local": settings.local, "mode": settings.mode,
        "max_time": settings.max_time, "job_ids": [], "session_id": None,
        "specs": {k: ({"spec_id": s.spec_id, **s.model_dump(mode="json")} if hasattr(s, "spec_id") else s)
                  for k, s in specs.items()},
        "spec_ids": {k: s.spec_id for k, s in specs.items() if hasattr(s, "spec_id")},
        "inputs": info,
        "isa": {"qpy": qpy_name, "sha256": qpy_hash, "num_qubits": [p[0].num_qubits for p in v2_pubs]},
        "observables": [[_op_json(op) for op in np.asarray(p[1], dtype=object).ravel()] for p in v2_pubs],
        "values": {"file": values_name, "sha256": values_hash, "shapes": [list(np.shape(p[2])) for p in v2_pubs]},
        "options": settings.record_options(),
        "cost": cost, "calibration_time": calibration_time(settings.backend), "provenance": provenance(),
        "times": {"created": store.now()}, "status": "PREPARED", "status_history": [], "result_file": None,
        **(extra or {}),
    }
    store.stage_record(stage, records_dir, record)
    stage.commit()
    return record


def submit_prepared(record: dict[str, Any], v2_pubs: Sequence[tuple], settings: JobSettings, mode_obj: Any, *,
                    records_dir: Path, submit_fn: Callable[..., Any] | None = None,
                    retry: rt.RetryPolicy = rt.RetryPolicy(),
                    sleep: Callable[[float], None] | None = None) -> tuple[dict[str, Any], Any]:
    """Submit a prepared job (bounded retry of transient errors) and record its id BEFORE anyone waits.

    Args:
        record: The record from :func:`prepare`.
        v2_pubs: Its ISA PUBs.
        settings: Its settings.
        mode_obj: The open batch / session (or the backend in job mode).
        records_dir: Where the record lives.
        submit_fn: ``(v2_pubs, precision, mode_obj) -> job`` instead of Runtime's Estimator (tests).
        retry: Backoff policy.
        sleep: Wait function of the backoff.

    Returns:
        The record with status ``SUBMITTED`` and the job id, and the job.

    Raises:
        SubmissionError: Every attempt failed, or Runtime refused the job (recorded as ``ERROR``).
    """
    import time

    log = rt.RetryLog()
    run = submit_fn or (lambda pubs, prec, m: settings.run(pubs, m))
    try:
        job = rt.with_retry(lambda: run(v2_pubs, settings.precision, mode_obj), retry,
                            sleep=sleep or time.sleep, log=log)
    except rt.SubmissionError as exc:
        store.append_status(records_dir, record, "ERROR", error=str(exc), submission_retries=log.errors)
        raise
    session_id = getattr(mode_obj, "session_id", None) if settings.mode != "job" else None
    record = {**record, "times": {**record.get("times", {}), "submitted": store.now()}}
    record = store.append_status(records_dir, record, "SUBMITTED", job_ids=[job.job_id()],
                                 session_id=session_id, submission_retries=log.errors)
    return record, job


def submit(spec: Any, inputs: JobInputs, *, records_dir: Path = RECORDS_DIR, dry_run: bool = False,
           max_qpu_seconds: float | None = None, backend: Any = None, submit_fn: Callable[..., Any] | None = None,
           retry: rt.RetryPolicy = rt.RetryPolicy(), sleep: Callable[[float], None] | None = None,
           wait_hook: Callable[[Path], None] | None = None, on_cost: Callable[[dict[str, Any]], None] | None = None,
           wait: bool = True) -> Outcome:
    """Transpile, estimate, record and (unless ``dry_run``) submit a job spec's PUBs as ONE job, then wait.

    Args:
        spec: The :class:`~qfl_qiskit.specs.job.JobSpec`.
        inputs: The logical PUBs and record facts.
        records_dir: Where records and their artifacts go.
        dry_run: Stop after the cost estimate; write a record marked ``DRY_RUN``.
        max_qpu_seconds: Refuse (before writing anything) if the estimate is larger.
        backend: The backend object (default: resolved from ``spec.backend``).
        submit_fn: ``(v2_pubs, precision, mode_obj) -> job``; default the Runtime Estimator. Injected in tests.
        retry: Backoff policy for transient submission errors.
        sleep: Wait function of the backoff (default ``time.sleep``).
        wait_hook: Called with the record path after the record with job ids is written, before waiting.
        on_cost: Called with the cost estimate before submitting (for printing).
        wait: Wait for the result and store it (else return right after recording).

    Returns:
        The :class:`Outcome`.

    Raises:
        CostLimitError: The estimate exceeds ``max_qpu_seconds``.
        SubmissionError: Submission failed after retries.
        JobFailedError: The job failed or was cancelled while waiting (recorded).
    """
    import time

    from qfl_qiskit.execution.runtime import check_options
    from qfl_qiskit.results.records import utc_stamp
    from qfl_qiskit.transpile import resolve_backend

    check_options("resilience", spec.resilience)  # a bad option is refused before anything is written
    backend = backend if backend is not None else resolve_backend(spec.backend)
    settings = JobSettings.from_spec(spec, backend)
    v2_pubs = transpile_pubs(inputs, backend, seeds=spec.transpile_seeds)
    cost = cost_of(v2_pubs, settings)
    cost["runtime_estimate_s"] = None
    if not settings.local and not dry_run and submit_fn is None:
        with rt.execution_mode(backend, "job", None) as mode_obj:
            cost["runtime_estimate_s"] = rt.usage_estimate(settings.estimator(mode_obj), v2_pubs,
                                                           settings.precision)
    if on_cost is not None:
        on_cost(cost)
    check_budget(cost, max_qpu_seconds)
    record_id = f"{utc_stamp()}_{spec.name}_{store.sha256(repr(time.time_ns()).encode())[:6]}"
    record = prepare(v2_pubs, settings, records_dir=records_dir, record_id=record_id, specs=inputs.specs,
                     info=inputs.info, cost=cost, dry_run=dry_run)
    if dry_run:
        record = store.append_status(records_dir, record, "DRY_RUN")
        return Outcome(record, store.record_path(records_dir, record_id))
    with rt.execution_mode(backend, spec.mode, spec.max_time) as mode_obj:
        record, job = submit_prepared(record, v2_pubs, settings, mode_obj, records_dir=records_dir,
                                      submit_fn=submit_fn, retry=retry, sleep=sleep)
    path = store.record_path(records_dir, record_id)
    if wait_hook is not None:
        wait_hook(path)
    if not wait:
        return Outcome(record, path)
    record, result = wait_result(records_dir, record, job)
    return Outcome(record, path, result)


def _op_json(op: SparsePauliOp) -> list[list[Any]]:
    return [[label, float(np.real(c)), float(np.imag(c))] for label, c in op.to_list()]


def wait_result(records_dir: Path, record: dict[str, Any], job: Any) -> tuple[dict[str, Any], Any]:
    """Wait for ``job``; store its result (DONE, with the QPU seconds Runtime reports and the shots it ran) or its
    error (ERROR / CANCELLED, then :class:`JobFailedError`)."""
    try:
        result = job.result()
    except Exception as exc:  # Runtime raises several types for failed and cancelled jobs
        status = rt.status_name(job) if hasattr(job, "status") else "ERROR"
        status = status if status in ("CANCELLED", "ERROR") else "ERROR"
        error = rt.job_error(job) or f"{type(exc).__name__}: {exc}"
        store.append_status(records_dir, record, status, error=error)
        raise JobFailedError(f"job {record['job_ids'][0]} {status.lower()}: {error} "
                             f"(record {record['record_id']})") from None
    return _store_result(records_dir, record, result, job=job), result


def shots_run(result: Any) -> dict[str, Any]:
    """What Runtime reports it ran: the shots it resolved per binding (top-level ``shots``) and, per PUB, the
    executor's shots per randomization (a list under ZNE, one per noise factor)."""
    meta = dict(getattr(result, "metadata", {}) or {})
    return {"shots": meta.get("shots"), "target_precision": meta.get("target_precision"),
            "executor_shots_per_pub": [executor_shots(r.metadata) for r in result]}


def _store_result(records_dir: Path, record: dict[str, Any], result: Any, *, job: Any = None,
                  **fields: Any) -> dict[str, Any]:
    name = store.write_result(records_dir, record["record_id"], rt.encode_result(result))
    times = {**record.get("times", {}), "finished": store.now()}
    reported = rt.reported_seconds(job, local=record["local"]) if job is not None else None
    return store.append_status(records_dir, record, "DONE", result_file=name, times=times,
                               qpu_seconds_reported=reported, shots_run=shots_run(result), **fields)


def fetch(record_id: str, *, records_dir: Path = RECORDS_DIR, service: Any = None) -> tuple[dict[str, Any], Any]:
    """The result of a recorded job: stored, looked up through the service, or (fake backends) re-run.

    Returns:
        The (possibly updated) record and the decoded ``PrimitiveResult``.

    Raises:
        JobRecordError: Unknown or corrupt record, or a dry-run record.
        JobFailedError: The job failed or was cancelled (the recorded error is in the message).
        ExecutionError: A real job is still queued or running.
    """
    record = store.load(records_dir, record_id)
    text = store.read_result_text(records_dir, record)
    if text is not None:
        try:
            return record, rt.decode_result(text)
        except Exception as exc:  # noqa: BLE001  (a truncated or edited file: JSON or Runtime decoder errors)
            how = ("a seeded local re-run" if record["local"]
                   else "fetched again from the service by job id, no new QPU time")
            raise store.JobRecordError(
                f"{records_dir / record['result_file']} is damaged ({type(exc).__name__}); delete it and run "
                f"`qfl jobs fetch {record_id}` again ({how})") from None
    _refuse_unfetchable(record)
    if record["local"]:
        return _rerun_local(records_dir, record)
    job = (service or rt.service()).job(record["job_ids"][0])
    status = rt.status_name(job)
    if status in ("ERROR", "CANCELLED"):
        store.append_status(records_dir, record, status, error=rt.job_error(job))
        raise JobFailedError(f"job {record['job_ids'][0]} {status.lower()}: {rt.job_error(job) or 'no message'}")
    if status != "DONE":
        record = _note_status(records_dir, record, status)
        raise ExecutionError(f"job {record['job_ids'][0]} is {status}; fetch again when it is DONE")
    result = job.result()
    return _store_result(records_dir, record, result, job=job), result


def _refuse_unfetchable(record: dict[str, Any]) -> None:
    rid, status = record["record_id"], record.get("status")
    if record.get("dry_run"):
        raise store.JobRecordError(f"record {rid} is a dry run: nothing was submitted; submit without --dry-run")
    if status in ("ERROR", "CANCELLED"):
        error = store.last_error(record) or "no error message recorded"
        raise JobFailedError(f"job {record['job_ids'][0] if record['job_ids'] else rid} {status.lower()}: "
                             f"{error}; there is no result to fetch")
    if not record.get("job_ids"):
        raise store.JobRecordError(f"record {rid} has no job id: the submission never returned one")


def _rerun_local(records_dir: Path, record: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Re-run a local-testing-mode job from its saved ISA circuits, values, observables, shots and seed."""
    from qfl_qiskit.transpile import resolve_backend

    circuits = store.read_circuits(records_dir, record)
    values = store.read_values(records_dir, record)
    pubs = []
    for isa, obs, vals in zip(circuits, record["observables"], values, strict=True):
        ops = [SparsePauliOp.from_list([(lab, complex(re, im)) for lab, re, im in terms]) for terms in obs]
        pubs.append((isa, v2_observables(ops, vals.ndim - 1), vals))
    opts = record["options"]
    settings = JobSettings(backend=resolve_backend(record["backend"]), precision=opts["precision"],
                           shots=opts["shots"], seed=opts["seed"], resilience=opts["resilience"],
                           options=opts.get("runtime"), layer_noise=opts.get("layer_noise"))
    result = settings.run(pubs).result()
    return _store_result(records_dir, record, result, recovered_by="seeded local re-run"), result


def _note_status(records_dir: Path, record: dict[str, Any], status: str) -> dict[str, Any]:
    if record.get("status") == status:
        return record
    return store.append_status(records_dir, record, status)


def status(record_id: str, *, records_dir: Path = RECORDS_DIR, service: Any = None) -> dict[str, Any]:
    """The record with its status refreshed from the service (real jobs); local jobs keep their recorded status."""
    record = store.load(records_dir, record_id)
    if record["local"] or record.get("status") in rt.TERMINAL or not record.get("job_ids"):
        return record
    job = (service or rt.service()).job(record["job_ids"][0])
    return _note_status(records_dir, record, rt.status_name(job))


def cancel(record_id: str, *, records_dir: Path = RECORDS_DIR, service: Any = None) -> dict[str, Any]:
    """Cancel a recorded job that has not finished.

    A local-testing-mode job runs inside its submitting process; once that process is gone nothing runs, and the
    record is marked ``CANCELLED`` so ``fetch`` does not re-run it.

    Raises:
        JobRecordError: The job already finished (or is a dry run): nothing to cancel.
    """
    record = store.load(records_dir, record_id)
    if record.get("status") in rt.TERMINAL:
        raise store.JobRecordError(f"job of record {record_id} already finished ({record['status']}); "
                                   "nothing to cancel")
    if not record["local"]:
        (service or rt.service()).job(record["job_ids"][0]).cancel()
    return store.append_status(records_dir, record, "CANCELLED", error="cancelled by user")


def pub_results(result: Any) -> list[Estimate]:
    """A ``PrimitiveResult`` as :class:`Estimate` objects with the toolkit's shape convention (K last)."""
    out = []
    for res in result:
        if not hasattr(getattr(res, "data", None), "evs"):
            raise ExecutionError(f"the job's result is a {type(result).__name__} without expectation values; "
                                 "it was not run by the Estimator")
        out.append(Estimate(from_v2(res.data.evs), from_v2(res.data.stds), {"shots": executor_shots(res.metadata)}))
    return out
