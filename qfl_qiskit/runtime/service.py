"""The qiskit-ibm-runtime calls of Runtime jobs: execution modes, submission with retry, job look-up, result JSON.

This is the only module of :mod:`qfl_qiskit.runtime` that imports ``qiskit_ibm_runtime`` (besides the
estimator adapter in :mod:`qfl_qiskit.execution.runtime`). Credentials are never handled here: ``QiskitRuntimeService()`` reads the saved
account or ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_CHANNEL`` / ``QISKIT_IBM_INSTANCE`` itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from qfl_qiskit.errors import ExecutionError

#: Job states after which nothing changes any more.
TERMINAL = frozenset({"DONE", "ERROR", "CANCELLED", "DRY_RUN"})


class SubmissionError(ExecutionError):
    """Submitting failed (after retries, or with an error that retrying cannot fix)."""


def transient_errors() -> tuple[type[BaseException], ...]:
    """Exception types retried on submission: network faults and Runtime API request errors."""
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError

    return (ConnectionError, TimeoutError, RequestsApiError)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: waits ``base * factor**k`` (capped at ``max_delay``) between attempts.

    Attributes:
        attempts: Total attempts (first try included).
        base: First wait in seconds.
        factor: Growth per retry.
        max_delay: Cap of one wait.
        transient: Exception types worth retrying (default :func:`transient_errors`).
    """

    attempts: int = 4
    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    transient: tuple[type[BaseException], ...] | None = None

    def delays(self) -> list[float]:
        """The waits between attempts (``attempts - 1`` of them)."""
        return [min(self.base * self.factor**k, self.max_delay) for k in range(self.attempts - 1)]


@dataclass
class RetryLog:
    """What happened during a submission with retry (for the record)."""

    errors: list[str] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)


def with_retry(fn: Callable[[], Any], policy: RetryPolicy, *, sleep: Callable[[float], None] = time.sleep,
               log: RetryLog | None = None) -> Any:
    """Call ``fn``; on a transient error wait and try again, at most ``policy.attempts`` times.

    Raises:
        SubmissionError: Every attempt failed transiently, or a non-transient error occurred (the original
            exception is chained).
    """
    transient = policy.transient or transient_errors()
    log = log if log is not None else RetryLog()
    delays = policy.delays()
    for attempt in range(policy.attempts):
        try:
            return fn()
        except transient as exc:
            log.errors.append(f"{type(exc).__name__}: {exc}")
            if attempt == policy.attempts - 1:
                raise SubmissionError(
                    f"submission failed {policy.attempts} times with transient errors, giving up "
                    f"(last: {type(exc).__name__}: {exc}); nothing was submitted, try again later") from exc
            log.waits.append(delays[attempt])
            sleep(delays[attempt])
        except Exception as exc:  # not transient: Runtime refused the job (bad input, permissions...)
            log.errors.append(f"{type(exc).__name__}: {exc}")
            raise SubmissionError(f"submission refused: {type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable")


def is_local(backend: Any) -> bool:
    """True for a fake backend, which Runtime runs in local testing mode."""
    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    return isinstance(backend, FakeBackendV2)


def service() -> Any:
    """``QiskitRuntimeService()`` from the saved account or the QISKIT_IBM_* environment variables."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    try:
        return QiskitRuntimeService()
    except Exception as exc:  # the service raises several types for a missing or bad account
        raise ExecutionError(
            "no IBM Quantum account: save one with QiskitRuntimeService.save_account or set QISKIT_IBM_TOKEN "
            f"(and QISKIT_IBM_CHANNEL / QISKIT_IBM_INSTANCE) ({type(exc).__name__})") from None


@contextmanager
def execution_mode(backend: Any, mode: str, max_time: int | None) -> Iterator[Any]:
    """The object primitives run in: the backend (job mode), or an open ``Batch`` / ``Session``, closed on exit.

    Closing a batch or session does not cancel its submitted jobs; it stops new ones and ends idle billing.
    """
    if mode == "job":
        yield backend
        return
    from qiskit_ibm_runtime import Batch, Session

    ctx = Batch(backend=backend, max_time=max_time) if mode == "batch" else Session(backend=backend, max_time=max_time)
    with ctx as opened:
        yield opened


def make_estimator(mode_obj: Any, *, shots: int | None, seed: int | None, resilience: dict[str, Any] | None,
                   options: dict[str, Any] | None = None) -> Any:
    """The non-deprecated ``executor_estimator.Estimator`` in ``mode_obj`` with a job's options.

    Args:
        mode_obj: Backend (job mode), ``Batch`` or ``Session``.
        shots: Default shots per binding (None: from the precision).
        seed: Simulator seed (local testing mode).
        resilience: A ``resilience`` options block (job specs).
        options: Any other ``EstimatorOptions`` fields (``resilience_level``, ``twirling``,
            ``dynamical_decoupling``, ``resilience``...), as :func:`~qfl_qiskit.mitigation.to_runtime_options`
            makes them; applied before ``resilience``.
    """
    from qiskit_ibm_runtime.executor_estimator import Estimator

    from qfl_qiskit.execution.runtime import _set_option

    est = Estimator(mode=mode_obj)
    if shots is not None:
        est.options.default_shots = shots
    if seed is not None:
        est.options.simulator.seed_simulator = seed
    for key, value in (options or {}).items():
        _set_option(est.options, key, value)
    if resilience:
        _set_option(est.options, "resilience", resilience)
    return est


def learn_layer_noise(estimator: Any, v2_pubs: Sequence[tuple], mode_obj: Any) -> tuple[list[Any], Any]:
    """Submit the noise learning PEA (and PEC) need: the unique boxed gate layers of the PUBs
    (``Estimator.find_unique_layers``), learned by Runtime's ``NoiseLearnerV3`` in a job of their own.

    qiskit-ibm-runtime 0.51's client-side Estimator refuses PEA without ``resilience.layer_noise_model``; its
    documented path is this one (learn, then ``to_pauli_lindblad_maps``). Needs ``qiskit-noise-learning``.

    Returns:
        The layers and the (not yet finished) learning job.
    """
    from qiskit_ibm_runtime.executor_noise_learner import NoiseLearnerV3

    layers = estimator.find_unique_layers(list(v2_pubs))
    return layers, NoiseLearnerV3(mode=mode_obj).run(layers)


def maps_to_json(maps: Sequence[Any]) -> list[dict[str, Any]]:
    """Learned ``PauliLindbladMap`` objects as JSON data (their sparse terms), for records and re-runs."""
    return [{"num_qubits": int(m.num_qubits),
             "terms": [[str(p), [int(i) for i in idx], float(rate)] for p, idx, rate in m.to_sparse_list()]}
            for m in maps]


def maps_from_json(data: Sequence[dict[str, Any]]) -> list[Any]:
    """The maps of :func:`maps_to_json`."""
    from qiskit.quantum_info import PauliLindbladMap

    return [PauliLindbladMap.from_sparse_list([tuple(t) for t in m["terms"]], num_qubits=m["num_qubits"])
            for m in data]


def attach_layer_noise(estimator: Any, v2_pubs: Sequence[tuple], maps: Sequence[dict[str, Any]] | None) -> Any:
    """Give ``estimator`` the learned layer noise (JSON maps, in the order of its PUBs' unique layers)."""
    if maps:
        layers = estimator.find_unique_layers(list(v2_pubs))
        if len(layers) != len(maps):
            raise ExecutionError(f"the PUBs have {len(layers)} gate layers but the learned noise model {len(maps)}; "
                                 "learn the layer noise again")
        estimator.options.resilience.layer_noise_model = list(zip(layers, maps_from_json(maps)))
    return estimator


def executed_shots(resolved: dict[str, Any], shots: int) -> dict[str, Any]:
    """The shots Runtime really runs per binding and measurement basis for ``shots`` requested, from the
    resolved options (:func:`~qfl_qiskit.execution.runtime.resolved_options`).

    Twirling (measurement twirling is on at Runtime's default resilience level) splits the shots into
    randomizations with qiskit-ibm-runtime's own ``calculate_twirling_shots`` (both "auto":
    ``max(64, ceil(shots/32))`` per randomization), which rounds the total up; ZNE runs every noise factor.
    """
    from qiskit_ibm_runtime.executor.calculate_twirling_shots import calculate_twirling_shots

    twirling = resolved.get("twirling") or {}
    if twirling.get("enable_gates") or twirling.get("enable_measure"):
        n, per = calculate_twirling_shots(int(shots), twirling.get("num_randomizations", "auto"),
                                          twirling.get("shots_per_randomization", "auto"))
    else:
        n, per = 1, int(shots)
    resilience = resolved.get("resilience") or {}
    factors = [1.0]
    if resilience.get("zne_mitigation"):
        given = (resilience.get("zne") or {}).get("noise_factors")
        if not isinstance(given, (list, tuple)):  # "auto": Runtime's own default factors
            from qiskit_ibm_runtime.executor_estimator.utils import DEFAULT_NOISE_FACTORS as given
        factors = [float(f) for f in given]
    return {"requested": int(shots), "num_randomizations": int(n), "shots_per_randomization": int(per),
            "per_binding": int(n * per), "noise_factors": factors,
            "per_binding_all_factors": int(n * per * len(factors))}


def usage_estimate(estimator: Any, v2_pubs: Sequence[tuple], precision: float | None) -> float | None:
    """Runtime's own estimate of QPU seconds through a server-side dry run (real backends only; None if refused).

    qiskit-ibm-runtime 0.51 offers ``Estimator.run(..., dry_run=True)``: the service validates the job and reports
    ``job.usage_estimation["quantum_seconds"]`` without running on a QPU (access may be restricted).
    """
    try:
        job = estimator.run(list(v2_pubs), precision=precision, dry_run=True)
        seconds = job.usage_estimation.get("quantum_seconds")
        return float(seconds) if seconds is not None else None
    except Exception:  # an estimate is optional: any refusal falls back to the formula
        return None


def reported_seconds(job: Any, *, local: bool) -> float | None:
    """QPU seconds Runtime bills for a finished job (``job.usage()``); None in local testing mode, where no QPU
    ran (``LocalRuntimeJob.usage()`` is 0), or when the service gives no figure."""
    if local:
        return None
    try:
        value = job.usage()
    except Exception:  # noqa: BLE001  (usage is optional: older jobs, restricted instances)
        return None
    return float(value) if value is not None else None


def status_name(job: Any) -> str:
    """A job's status as a plain upper-case name (``DONE``, ``QUEUED``, ``ERROR``...)."""
    status = job.status()
    return str(getattr(status, "name", status)).upper()


def job_error(job: Any) -> str:
    """The error message Runtime gives for a failed job ('' if none)."""
    try:
        return str(job.error_message() or "")
    except Exception:  # some job types cannot report one
        return ""


def encode_result(result: Any) -> str:
    """A ``PrimitiveResult`` as JSON text with qiskit-ibm-runtime's ``RuntimeEncoder``.

    The executor's top-level metadata holds a ``Metadata`` dataclass the encoder does not know; it is stored as
    its ``repr`` (the per-PUB data and metadata are kept as they are).
    """
    from qiskit.primitives import PrimitiveResult
    from qiskit_ibm_runtime.utils.json import RuntimeEncoder

    metadata = {k: (v if _jsonable(v) else repr(v)) for k, v in dict(result.metadata).items()}
    return json.dumps(PrimitiveResult(list(result), metadata=metadata), cls=RuntimeEncoder)


def decode_result(text: str) -> Any:
    """The ``PrimitiveResult`` encoded by :func:`encode_result` (``RuntimeDecoder``)."""
    from qiskit_ibm_runtime.utils.json import RuntimeDecoder

    return json.loads(text, cls=RuntimeDecoder)


def _jsonable(value: Any) -> bool:
    from qiskit_ibm_runtime.utils.json import RuntimeEncoder

    try:
        json.dumps(value, cls=RuntimeEncoder)
        return True
    except TypeError:
        return False
