"""One optimisation step as ONE Runtime job, submitted at most once per attempt, found again after a crash.

- :class:`StepEstimator`: the estimator a model trains with on a device. A step runs the model's forward pass
  twice: the first pass collects every evaluation the step needs (the forward values of every quantum layer, every
  parameter-shift or SPSA binding, every ZNE scale factor of our mitigation) without running anything; they go to
  Runtime as the PUBs of ONE job; the second pass, which autograd follows, is answered from that job's result
  (each evaluation is checked to be the one collected).
- :class:`StepRunner`: submits a step's PUBs through :mod:`qfl_qiskit.runtime.jobs` as a job record in the run's
  ``jobs/`` folder (``step00007-1`` = step 7, attempt 1), with the job id written before anyone waits and a job
  tag naming the record. A failed job is submitted again with backoff, at most ``job_retries`` times. After a crash
  the step's record is found again: a finished result is read from disk, a submitted job is looked up by its id (a
  job cut off between submission and its id being recorded, by its tag), so no QPU time is spent twice; local
  testing mode jobs, which live in their process only, are re-run with the same seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qfl_qiskit.errors import ExecutionError, QflError
from qfl_qiskit.execution.base import Estimate, QflEstimator, Task, v2_observables
from qfl_qiskit.runtime import jobs
from qfl_qiskit.runtime import records as store
from qfl_qiskit.runtime import service as rt


class RunStopped(QflError):
    """The run stopped before its last step (a job failed too often, was cancelled, or the session ended); the
    checkpoint of the last finished step is kept and ``--resume`` continues from it."""


class RunInterrupted(QflError):
    """Ctrl-C during a run; the message says which job is still queued and how to resume or cancel it."""

    exit_code = 130


class StepEstimator(QflEstimator):
    """Collects a forward pass's evaluations, then replays the job's results for the same evaluations.

    Args:
        info: What :meth:`describe` reports (backend, options) for records.
    """

    name = "runtime_step"

    def __init__(self, info: dict[str, Any]) -> None:
        self.tasks: list[Task] = []
        self._results: list[Estimate] | None = None
        self._next = 0
        self._info = info

    def collect(self) -> None:
        """Start collecting (pass 1): evaluations are recorded and answered with zeros."""
        self.tasks, self._results, self._next = [], None, 0

    def replay(self, results: Sequence[Estimate]) -> None:
        """Answer the collected evaluations, in order, with ``results`` (pass 2)."""
        if len(results) != len(self.tasks):
            raise ExecutionError(f"the job returned {len(results)} results for {len(self.tasks)} PUBs")
        self._results, self._next = list(results), 0

    def v2_pubs(self) -> list[tuple]:
        """The collected evaluations as V2 PUBs ``(isa_circuit, observables (K, 1..), values)``."""
        return [(t.circuit, v2_observables(t.observables, len(t.batch_shape)), t.values) for t in self.tasks]

    def _estimate(self, tasks: list[Task]) -> list[Estimate]:
        if self._results is None:
            self.tasks.extend(tasks)
            return [Estimate(np.zeros(t.batch_shape + (len(t.observables),)),
                             np.zeros(t.batch_shape + (len(t.observables),))) for t in tasks]
        out = []
        for task in tasks:
            i = self._next
            ref = self.tasks[i] if i < len(self.tasks) else None
            if ref is None or ref.circuit is not task.circuit or not np.array_equal(ref.values, task.values):
                raise ExecutionError("the replayed forward pass asked for other evaluations than the collected ones")
            out.append(self._results[i])
            self._next += 1
        return out

    def describe(self) -> dict[str, Any]:
        return dict(self._info)


def step_record_id(step: int, attempt: int) -> str:
    """``step00007-1``: the job record of a step's attempt."""
    return f"step{step:05d}-{attempt}"


class StepRunner:
    """Runs each step's PUBs as one Runtime job with a record (see the module docstring).

    Args:
        settings: The run's job settings (backend, mode, shots or precision, options).
        records_dir: The run's ``jobs/`` folder.
        tag: A tag naming the run, added to every job with the record id.
        specs: Specs stored in every job record.
        seed: Base simulator seed in local testing mode (step k runs with ``seed + k``).
        job_retries: Times a failed job is submitted again.
        retry: Backoff policy (submission errors, and the waits between failed jobs).
        submit_fn: ``(v2_pubs, precision, mode_obj) -> job`` instead of Runtime's Estimator (tests).
        service: A ``QiskitRuntimeService`` (default: the saved account, only when a real job is looked up).
        sleep: Wait function of the backoff.
        wait_hook: Called with the record path after the job id is recorded, before waiting.
        on_submit: Called with the record of every job this process submits.
    """

    def __init__(self, settings: jobs.JobSettings, records_dir: Path, *, tag: str, specs: dict[str, Any],
                 seed: int, job_retries: int = 3, retry: rt.RetryPolicy = rt.RetryPolicy(),
                 submit_fn: Callable[..., Any] | None = None, service: Any = None,
                 sleep: Callable[[float], None] = time.sleep,
                 wait_hook: Callable[[Path], None] | None = None,
                 on_submit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.settings, self.records_dir, self.tag, self.specs = settings, records_dir, tag, specs
        self.seed, self.job_retries, self.retry = seed, job_retries, retry
        self.submit_fn, self._service, self.sleep, self.wait_hook = submit_fn, service, sleep, wait_hook
        self.on_submit = on_submit
        self.submissions = 0  # jobs submitted by this process (a recovered job is not submitted again)

    def service(self) -> Any:
        if self._service is None:
            self._service = rt.service()
        return self._service

    def _settings(self, step: int, record_id: str) -> jobs.JobSettings:
        options = dict(self.settings.options or {})
        options["environment"] = {**options.get("environment", {}), "job_tags": [self.tag, record_id]}
        seed = self.seed + step if self.settings.local else None
        return replace(self.settings, options=options, seed=seed)

    def attempts(self, step: int) -> list[dict[str, Any]]:
        """The job records of a step's attempts so far, in order (a corrupt one stops the run: it is not guessed)."""
        prefix = f"step{step:05d}-"
        numbers = sorted(int(p.stem[len(prefix):]) for p in self.records_dir.glob(f"{prefix}*.json")
                         if p.stem[len(prefix):].isdigit())
        return [store.load(self.records_dir, step_record_id(step, n)) for n in numbers]

    def run(self, step: int, v2_pubs: list[tuple], mode_obj: Any, *, cost: dict[str, Any],
            info: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """The result of step ``step``: from an earlier attempt where one exists, else from new jobs.

        Returns:
            The DONE job record and its ``PrimitiveResult``.

        Raises:
            RunStopped: Every attempt failed, the job was cancelled, or the session / batch no longer accepts jobs.
            RunInterrupted: Ctrl-C while waiting.
        """
        earlier = self.attempts(step)
        for record in earlier:
            self._check_same(record, v2_pubs, step)
        last = earlier[-1] if earlier else None
        if last is not None and last["status"] not in ("ERROR", "CANCELLED"):
            return self._recover(last, v2_pubs, mode_obj, step)
        attempt = int(last["record_id"].rsplit("-", 1)[1]) + 1 if last is not None else 1
        failed = 0  # in this call: every resume gets job_retries + 1 attempts again
        while True:
            if failed > self.job_retries:
                raise RunStopped(f"step {step}: {failed} jobs failed in a row (last: {_last_error(last)}); the "
                                 "checkpoint of the step before is kept: `--resume` tries the step again")
            rid = step_record_id(step, attempt)
            settings = self._settings(step, rid)
            record = jobs.prepare(v2_pubs, settings, records_dir=self.records_dir, record_id=rid, specs=self.specs,
                                  info={**info, "step": step, "attempt": attempt}, cost=cost,
                                  extra={"job_tags": [self.tag, rid]})
            try:
                return self._submit_and_wait(record, v2_pubs, settings, mode_obj, step)
            except jobs.JobFailedError:
                last = store.load(self.records_dir, rid)
                if last["status"] == "CANCELLED":
                    raise RunStopped(f"step {step}: job {last['job_ids'][0]} was cancelled; the checkpoint of the "
                                     "step before is kept: `--resume` submits the step again") from None
                failed += 1
                delays = self.retry.delays() or [0.0]
                if failed <= self.job_retries:
                    self.sleep(delays[min(failed - 1, len(delays) - 1)])
            attempt += 1

    def _submit_and_wait(self, record: dict[str, Any], v2_pubs: list[tuple], settings: jobs.JobSettings,
                         mode_obj: Any, step: int) -> tuple[dict[str, Any], Any]:
        try:
            record, job = jobs.submit_prepared(record, v2_pubs, settings, mode_obj, records_dir=self.records_dir,
                                               submit_fn=self.submit_fn, retry=self.retry, sleep=self.sleep)
        except rt.SubmissionError as exc:
            cause = f"{exc.__cause__}" if exc.__cause__ is not None else str(exc)
            if _session_closed(cause):
                raise RunStopped(f"step {step}: the {settings.mode} no longer accepts jobs ({_short(cause)}): it "
                                 f"reached max_time or expired; `--resume` continues in a new {settings.mode}") from None
            raise RunStopped(f"step {step}: {exc}; `--resume` tries the step again") from None
        self.submissions += 1
        if self.on_submit is not None:
            self.on_submit(record)
        return self._wait(record, job, step)

    def _wait(self, record: dict[str, Any], job: Any, step: int) -> tuple[dict[str, Any], Any]:
        path = store.record_path(self.records_dir, record["record_id"])
        try:
            if self.wait_hook is not None:
                self.wait_hook(path)
            return jobs.wait_result(self.records_dir, record, job)
        except KeyboardInterrupt:
            raise RunInterrupted(_interrupted(record, self.records_dir, step)) from None

    def _recover(self, record: dict[str, Any], v2_pubs: list[tuple], mode_obj: Any,
                 step: int) -> tuple[dict[str, Any], Any]:
        """An earlier attempt's result: stored, fetched by job id or tag, or (local) re-run with its seed."""
        rid = record["record_id"]
        if record["status"] == "PREPARED":  # killed between writing the record and recording the job id
            found = None if record["local"] else self._find_by_tag(rid)
            if found is None:
                settings = self._settings(step, rid)
                return self._submit_and_wait(record, v2_pubs, settings, mode_obj, step)
            record = store.append_status(self.records_dir, record, "SUBMITTED", job_ids=[found.job_id()],
                                         recovered_by="job tag")
            return self._wait(record, found, step)
        if record["local"] or store.read_result_text(self.records_dir, record) is not None:
            return jobs.fetch(rid, records_dir=self.records_dir)
        return self._wait(record, self.service().job(record["job_ids"][0]), step)

    def _find_by_tag(self, rid: str) -> Any:
        try:
            found = self.service().jobs(job_tags=[self.tag, rid], limit=1)
        except Exception as exc:  # noqa: BLE001  (a service error must not lead to a second, billed job)
            raise RunStopped(f"cannot tell whether the job of record {rid} was submitted before the crash "
                             f"({type(exc).__name__}: {_short(str(exc))}); try `--resume` again later") from None
        return found[0] if found else None

    def _check_same(self, record: dict[str, Any], v2_pubs: list[tuple], step: int) -> None:
        values = store.read_values(self.records_dir, record)
        same = len(values) == len(v2_pubs) and all(
            np.shape(a) == np.shape(p[2]) and np.array_equal(a, np.asarray(p[2], dtype=float))
            for a, p in zip(values, v2_pubs))
        if not same:
            raise RunStopped(f"job record {record['record_id']} of step {step} holds other parameter values than "
                             "this run computes (a changed checkpoint or data file since it was submitted); "
                             "restore them, or train under another spec name")


def _last_error(record: dict[str, Any] | None) -> str:
    if record is None:
        return "no record"
    return _short(store.last_error(record) or record.get("status", "?"))


def _short(text: str) -> str:
    return " ".join(str(text).split())[:200]


def _session_closed(message: str) -> bool:
    text = message.lower()
    return ("session" in text or "batch" in text) and any(w in text for w in ("closed", "expired", "inactive",
                                                                              "not active", "ended"))


def _interrupted(record: dict[str, Any], records_dir: Path, step: int) -> str:
    rid, job_id = record["record_id"], (record.get("job_ids") or ["?"])[0]
    kept = "no step had finished" if step == 1 else f"the checkpoint of step {step - 1} is kept"
    if record["local"]:
        return (f"interrupted during step {step}: the local testing mode job {job_id} stopped with this process "
                f"(nothing billed); {kept}: `--resume` runs the step again with the same seed")
    return (f"interrupted while job {job_id} of step {step} is queued or running on {record['backend']}: it is "
            f"still billed when it runs. `qfl train SPEC --resume` fetches its result by id (no second job); "
            f"`qfl jobs cancel {rid} --records-dir {records_dir}` cancels it")
