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

import math
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
from qfl_qiskit.runtime import service as rt

#: Repetition delay (s) when the backend configuration gives no ``default_rep_delay`` (IBM's usual 250 us).
DEFAULT_REP_DELAY = 250e-6
RECORDS_DIR = Path("runtime_jobs/records")


class CostLimitError(ExecutionError):
    """The estimated QPU time exceeds ``--max-qpu-seconds``; nothing was submitted or written."""


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


def shots_per_binding(precision: float | None, shots: int | None) -> int:
    """Shots Runtime takes per binding and measurement basis: ``shots``, else ceil(1 / precision^2)."""
    if shots is not None:
        return int(shots)
    return int(math.ceil(1.0 / (precision if precision is not None else 1 / 64) ** 2))


def estimate_cost(v2_pubs: Sequence[tuple], backend: Any, *, shots: int) -> dict[str, Any]:
    """Counts and an estimate of QPU seconds for ISA PUBs.

    Formula: ``qpu_seconds = sum over PUBs of B * G * shots * (rep_delay + T)`` with B the bindings of the PUB,
    G the qubit-wise commuting groups of its observables' Pauli terms (one measurement basis each), T the ISA
    circuit's scheduled duration on the backend target plus the longest read-out of its active qubits, and
    ``rep_delay`` the backend configuration's ``default_rep_delay`` (else :data:`DEFAULT_REP_DELAY`). It leaves out
    Runtime's per-job overhead (compilation, loading: seconds per job), so it is a lower bound on billed time.
    """
    rep_delay = _rep_delay(backend)
    rows, total = [], 0.0
    for isa, obs, values in v2_pubs:
        bindings = int(np.prod(np.asarray(values).shape[:-1], dtype=int))
        ops = [op for op in np.asarray(obs, dtype=object).ravel()]
        paulis = SparsePauliOp.sum(ops).simplify(atol=0).paulis if ops else None
        groups = len(paulis.group_qubit_wise_commuting()) if paulis is not None else 1
        duration = _duration(isa, backend)
        seconds = bindings * groups * shots * (rep_delay + (duration or 0.0))
        total += seconds
        rows.append({"circuit": isa.name, "bindings": bindings, "observables": len(ops),
                     "measurement_groups": groups, "duration_s": duration, "qpu_seconds": seconds})
    return {"pubs": len(v2_pubs), "circuits": len({id(p[0]) for p in v2_pubs}),
            "bindings": sum(r["bindings"] for r in rows), "shots_per_binding": shots,
            "total_shots": sum(r["bindings"] * r["measurement_groups"] for r in rows) * shots,
            "rep_delay_s": rep_delay, "qpu_seconds": total, "per_pub": rows,
            "formula": "sum_pubs bindings * measurement_groups * shots * (rep_delay + circuit_duration + readout)"}


def _rep_delay(backend: Any) -> float:
    try:
        value = getattr(backend.configuration(), "default_rep_delay", None)
    except Exception:  # backends without a configuration (generic, custom)
        value = None
    return float(value) if value else DEFAULT_REP_DELAY


def _duration(isa: QuantumCircuit, backend: Any) -> float | None:
    from qfl_qiskit.transpile import active_qubits

    try:
        gates = float(isa.estimate_duration(backend.target, unit="s"))
    except Exception:  # targets without durations cannot be scheduled
        return None
    readout = 0.0
    if "measure" in backend.target.operation_names:
        for q in active_qubits(isa):
            props = backend.target["measure"].get((q,))
            if props is not None and props.duration:
                readout = max(readout, float(props.duration))
    return gates + readout


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

    from qfl_qiskit.results.records import provenance, utc_stamp
    from qfl_qiskit.transpile import calibration_time, resolve_backend

    from qfl_qiskit.atomic import Stage
    from qfl_qiskit.execution.runtime import check_options

    check_options("resilience", spec.resilience)  # a bad option is refused before anything is written
    backend = backend if backend is not None else resolve_backend(spec.backend)
    local = rt.is_local(backend)
    v2_pubs = transpile_pubs(inputs, backend, seeds=spec.transpile_seeds)
    precision = spec.effective_precision
    cost = estimate_cost(v2_pubs, backend, shots=shots_per_binding(precision, spec.shots))
    cost["runtime_estimate_s"] = None
    if not local and not dry_run and submit_fn is None:
        with rt.execution_mode(backend, "job", None) as mode_obj:
            est = rt.make_estimator(mode_obj, shots=spec.shots, seed=None, resilience=spec.resilience)
            cost["runtime_estimate_s"] = rt.usage_estimate(est, v2_pubs, precision)
    if on_cost is not None:
        on_cost(cost)
    limit_on = cost["runtime_estimate_s"] if cost["runtime_estimate_s"] is not None else cost["qpu_seconds"]
    if max_qpu_seconds is not None and limit_on > max_qpu_seconds:
        raise CostLimitError(f"estimated QPU time {limit_on:.3f} s exceeds --max-qpu-seconds {max_qpu_seconds:g}; "
                             "nothing submitted (fewer bindings, fewer shots or a larger limit)")
    record_id = f"{utc_stamp()}_{spec.name}_{store.sha256(repr(time.time_ns()).encode())[:6]}"
    stage = Stage()  # the record (first) and its artifacts are written together: no orphan file on a kill
    qpy_name, qpy_hash = store.write_circuits(records_dir, record_id, [p[0] for p in v2_pubs], stage=stage)
    values_name, values_hash = store.write_values(records_dir, record_id, [p[2] for p in v2_pubs], stage=stage)
    record: dict[str, Any] = {
        "record_type": "runtime_job", "record_id": record_id, "created": store.now(), "dry_run": dry_run,
        "backend": backend.name, "local": local, "mode": spec.mode, "max_time": spec.max_time,
        "job_ids": [], "session_id": None,
        "specs": {k: ({"spec_id": s.spec_id, **s.model_dump(mode="json")} if hasattr(s, "spec_id") else s)
                  for k, s in inputs.specs.items()},
        "spec_ids": {k: s.spec_id for k, s in inputs.specs.items() if hasattr(s, "spec_id")},
        "inputs": inputs.info,
        "isa": {"qpy": qpy_name, "sha256": qpy_hash, "num_qubits": [p[0].num_qubits for p in v2_pubs]},
        "observables": [[_op_json(op) for op in np.asarray(p[1], dtype=object).ravel()] for p in v2_pubs],
        "values": {"file": values_name, "sha256": values_hash, "shapes": [list(p[2].shape) for p in v2_pubs]},
        "options": {"precision": precision, "shots": spec.shots, "seed": spec.seed if local else None,
                    "resilience": spec.resilience,
                    "runtime_options": resolved_options(rt.make_estimator(
                        backend, shots=spec.shots, seed=spec.seed if local else None, resilience=spec.resilience))},
        "cost": cost, "calibration_time": calibration_time(backend), "provenance": provenance(),
        "times": {"created": store.now()}, "status": "PREPARED", "status_history": [], "result_file": None,
    }
    store.stage_record(stage, records_dir, record)
    stage.commit()
    if dry_run:
        record = store.append_status(records_dir, record, "DRY_RUN")
        return Outcome(record, store.record_path(records_dir, record_id))
    log = rt.RetryLog()
    with rt.execution_mode(backend, spec.mode, spec.max_time) as mode_obj:
        run = submit_fn or (lambda pubs, prec, m: rt.make_estimator(
            m, shots=spec.shots, seed=spec.seed if local else None,
            resilience=spec.resilience).run(pubs, precision=prec))
        try:
            job = rt.with_retry(lambda: run(v2_pubs, precision, mode_obj), retry,
                                sleep=sleep or time.sleep, log=log)
        except rt.SubmissionError as exc:
            store.append_status(records_dir, record, "ERROR", error=str(exc), submission_retries=log.errors)
            raise
        session_id = getattr(mode_obj, "session_id", None) if spec.mode != "job" else None
    record["times"]["submitted"] = store.now()
    record = store.append_status(records_dir, record, "SUBMITTED", job_ids=[job.job_id()],
                                 session_id=session_id, submission_retries=log.errors)
    path = store.record_path(records_dir, record_id)
    if wait_hook is not None:
        wait_hook(path)
    if not wait:
        return Outcome(record, path)
    record, result = _wait_and_store(records_dir, record, job)
    return Outcome(record, path, result)


def _op_json(op: SparsePauliOp) -> list[list[Any]]:
    return [[label, float(np.real(c)), float(np.imag(c))] for label, c in op.to_list()]


def _wait_and_store(records_dir: Path, record: dict[str, Any], job: Any) -> tuple[dict[str, Any], Any]:
    """Wait for ``job``; store its result (DONE) or its error (ERROR / CANCELLED)."""
    try:
        result = job.result()
    except Exception as exc:  # Runtime raises several types for failed and cancelled jobs
        status = rt.status_name(job) if hasattr(job, "status") else "ERROR"
        status = status if status in ("CANCELLED", "ERROR") else "ERROR"
        error = rt.job_error(job) or f"{type(exc).__name__}: {exc}"
        store.append_status(records_dir, record, status, error=error)
        raise JobFailedError(f"job {record['job_ids'][0]} {status.lower()}: {error} "
                             f"(record {record['record_id']})") from None
    return _store_result(records_dir, record, result), result


def _store_result(records_dir: Path, record: dict[str, Any], result: Any, **fields: Any) -> dict[str, Any]:
    name = store.write_result(records_dir, record["record_id"], rt.encode_result(result))
    times = {**record.get("times", {}), "finished": store.now()}
    return store.append_status(records_dir, record, "DONE", result_file=name, times=times, **fields)


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
    return _store_result(records_dir, record, result), result


def _refuse_unfetchable(record: dict[str, Any]) -> None:
    rid, status = record["record_id"], record.get("status")
    if record.get("dry_run"):
        raise store.JobRecordError(f"record {rid} is a dry run: nothing was submitted; submit without --dry-run")
    if status in ("ERROR", "CANCELLED"):
        last = next((h for h in reversed(record.get("status_history", [])) if h.get("error")), {})
        raise JobFailedError(f"job {record['job_ids'][0] if record['job_ids'] else rid} {status.lower()}: "
                             f"{last.get('error', 'no error message recorded')}; there is no result to fetch")
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
    est = rt.make_estimator(resolve_backend(record["backend"]), shots=opts["shots"], seed=opts["seed"],
                            resilience=opts["resilience"])
    result = est.run(pubs, precision=opts["precision"]).result()
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
