"""Runtime jobs offline: records before waiting, result round trip, retry, cost formula, faults, step counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp

from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution import estimate
from qfl_qiskit.runtime import records as store
from qfl_qiskit.runtime import jobs
from qfl_qiskit.runtime.service import RetryPolicy, SubmissionError
from qfl_qiskit.specs.job import CircuitInput, JobSpec
from qfl_qiskit.training.hardware import job_inputs, step_counts, step_pubs
from qfl_qiskit.transpile import resolve_backend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

TINY = 'kind = "qfl"\nmodalities = 2\nfeatures = 1\ndegree = 1\nobservables = 2\nobservable_seed = 3\n'


@pytest.fixture
def spec(tmp_path) -> JobSpec:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return JobSpec(name="tiny", backend="fake_manila", mode="job", precision=0.1, seed=5,
                   circuit=CircuitInput(spec=str(path), bindings=3, seed=1))


def test_record_is_written_with_job_ids_before_waiting_and_result_round_trips(spec, tmp_path):
    seen = {}

    def hook(path):
        rec = store.load(path.parent, path.stem)
        seen.update(exists=path.is_file(), job_ids=rec["job_ids"], status=rec["status"],
                    result=rec["result_file"])

    out = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path / "rec", wait_hook=hook)
    assert seen == {"exists": True, "job_ids": out.record["job_ids"], "status": "SUBMITTED", "result": None}
    assert len(seen["job_ids"]) == 1 and out.record["status"] == "DONE"
    assert [h["status"] for h in out.record["status_history"]] == ["SUBMITTED", "DONE"]
    assert (tmp_path / "rec" / out.record["isa"]["qpy"]).is_file()
    assert out.record["spec_ids"]["job"] == spec.spec_id and out.record["provenance"]["packages"]["qiskit"]
    # the stored result decodes into the same values (qiskit-ibm-runtime's JSON encoding)
    rec, result = jobs.fetch(out.record["record_id"], records_dir=tmp_path / "rec")
    assert np.array_equal(result[0].data.evs, out.result[0].data.evs)
    assert jobs.pub_results(result)[0].evs.shape == (3, 2)


def test_local_rerun_from_record_reproduces_values(spec, tmp_path):
    out = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path, wait=False)  # like a process killed here
    assert out.record["status"] == "SUBMITTED"
    rec, result = jobs.fetch(out.record["record_id"], records_dir=tmp_path)
    direct = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path / "direct")
    assert rec["recovered_by"] == "seeded local re-run" and rec["status"] == "DONE"
    assert np.array_equal(result[0].data.evs, direct.result[0].data.evs)


def test_session_mode_runs_and_records_the_mode(spec, tmp_path):
    s = spec.model_copy(update={"mode": "session", "max_time": 60})
    out = jobs.submit(s, job_inputs(s), records_dir=tmp_path)
    assert out.record["mode"] == "session" and out.record["max_time"] == 60 and out.record["status"] == "DONE"


class Flaky:
    """A submit function that fails ``fails`` times with a transient error, then submits for real."""

    def __init__(self, fails: int, spec: JobSpec) -> None:
        self.fails, self.calls, self.spec = fails, 0, spec

    def __call__(self, pubs, precision, mode):
        from qfl_qiskit.runtime.service import make_estimator

        self.calls += 1
        if self.calls <= self.fails:
            raise ConnectionError(f"network down ({self.calls})")
        return make_estimator(mode, shots=None, seed=self.spec.seed, resilience=None).run(pubs, precision=precision)


def test_transient_errors_are_retried_with_exponential_backoff(spec, tmp_path):
    waits = []
    flaky = Flaky(2, spec)
    out = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path, submit_fn=flaky, sleep=waits.append,
                      retry=RetryPolicy(attempts=4, base=0.5, factor=2.0))
    assert flaky.calls == 3 and waits == [0.5, 1.0] and out.record["status"] == "DONE"
    assert len(out.record["submission_retries"]) == 2


def test_retry_gives_up_after_the_bound_with_a_clear_error(spec, tmp_path):
    waits = []
    flaky = Flaky(10, spec)
    with pytest.raises(SubmissionError, match="failed 3 times with transient errors, giving up"):
        jobs.submit(spec, job_inputs(spec), records_dir=tmp_path, submit_fn=flaky, sleep=waits.append,
                    retry=RetryPolicy(attempts=3, base=1.0, factor=3.0, max_delay=2.0))
    assert flaky.calls == 3 and waits == [1.0, 2.0]  # 1, then 3 capped at 2
    [(rid, rec)] = store.list_records(tmp_path)
    assert rec["status"] == "ERROR" and rec["job_ids"] == []
    with pytest.raises(jobs.JobFailedError, match="giving up"):
        jobs.fetch(rid, records_dir=tmp_path)


def test_cost_formula_on_a_known_circuit():
    backend = resolve_backend("fake_manila")
    theta = Parameter("t")
    isa = QuantumCircuit(5)
    isa.rz(theta, 2)
    isa.sx(2)
    isa.sx(2)
    obs = np.empty((2, 1), dtype=object)
    obs[:, 0] = [SparsePauliOp("IIZII"), SparsePauliOp("IIXII")]  # qubit-wise non-commuting: 2 bases
    values = np.zeros((3, 1))
    cost = jobs.estimate_cost([(isa, obs, values)], backend, shots=100)
    t = backend.target
    circuit_s = 2 * t["sx"][(2,)].duration + t["measure"][(2,)].duration  # rz is virtual (0 s)
    rep = backend.configuration().default_rep_delay
    assert rep == pytest.approx(250e-6)
    assert cost["per_pub"][0]["measurement_groups"] == 2 and cost["total_shots"] == 3 * 2 * 100
    assert cost["qpu_seconds"] == pytest.approx(3 * 2 * 100 * (rep + circuit_s), rel=1e-9)
    assert jobs.shots_per_binding(0.05, None) == 400 and jobs.shots_per_binding(None, 123) == 123


def test_max_qpu_seconds_refuses_before_writing(spec, tmp_path):
    with pytest.raises(jobs.CostLimitError, match="exceeds --max-qpu-seconds"):
        jobs.submit(spec, job_inputs(spec), records_dir=tmp_path / "rec", max_qpu_seconds=1e-6)
    assert not (tmp_path / "rec").exists()


class FailingJob:
    def job_id(self):
        return "job-that-fails"

    def result(self):
        raise RuntimeError("internal QPU error")

    def status(self):
        return "ERROR"

    def error_message(self):
        return "Error 1517: calibration changed"


def test_failed_job_is_recorded_and_fetch_says_why(spec, tmp_path):
    with pytest.raises(jobs.JobFailedError, match="1517"):
        jobs.submit(spec, job_inputs(spec), records_dir=tmp_path, submit_fn=lambda *a: FailingJob())
    [(rid, rec)] = store.list_records(tmp_path)
    assert rec["status"] == "ERROR" and rec["status_history"][-1]["error"].startswith("Error 1517")
    with pytest.raises(jobs.JobFailedError, match="error: Error 1517.*no result to fetch"):
        jobs.fetch(rid, records_dir=tmp_path)


def test_corrupt_record_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "20260101T000000Z_bad_000000.json"
    path.write_bytes(b'{"record_id": "20260101T0')
    before = path.read_bytes()
    for call in (jobs.fetch, jobs.status, jobs.cancel):
        with pytest.raises(store.JobRecordError, match="corrupt.*left untouched"):
            call(path.stem, records_dir=tmp_path)
    assert path.read_bytes() == before
    assert store.list_records(tmp_path) == [(path.stem, None)]


def test_cancel_of_a_finished_job_is_refused_clearly(spec, tmp_path):
    out = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path)
    with pytest.raises(store.JobRecordError, match=r"already finished \(DONE\); nothing to cancel"):
        jobs.cancel(out.record["record_id"], records_dir=tmp_path)
    # an unfinished local job (its process is gone) is marked cancelled and no longer re-run by fetch
    pending = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path, wait=False)
    assert jobs.cancel(pending.record["record_id"], records_dir=tmp_path)["status"] == "CANCELLED"
    with pytest.raises(jobs.JobFailedError, match="cancelled"):
        jobs.fetch(pending.record["record_id"], records_dir=tmp_path)


def test_one_training_step_is_one_job_vs_estimator_qnn_measured(tmp_path):
    """EstimatorQNN with a counting V2 estimator: 2 runs per step; our step: 1 run of 2 PUBs."""
    from qiskit.primitives import StatevectorEstimator
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.execution.exact import ExactEstimator
    from qfl_qiskit.qnn import QuantumLayer
    from qfl_qiskit.specs import QFLSpec

    qnn = build_qfl(QFLSpec(modalities=2, features=1, degree=1, observables=2, observable_seed=3))
    runs = []

    class Counting(StatevectorEstimator):
        def run(self, pubs, *, precision=None):
            pubs = list(pubs)
            runs.append((len(pubs), sum(int(np.prod(np.shape(p[2])[:-1])) * np.size(p[1]) for p in pubs)))
            return super().run(pubs, precision=precision)

    eqnn = EstimatorQNN(circuit=qnn.circuit, observables=list(qnn.observables), input_params=list(qnn.inputs),
                        weight_params=list(qnn.weights), estimator=Counting(), default_precision=0.0)
    batch = 3
    x = np.random.default_rng(0).uniform(-1, 1, (batch, qnn.num_inputs))
    w = np.random.default_rng(1).uniform(-1, 1, qnn.num_weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eqnn.forward(x, w)
        eqnn.backward(x, w)
    layer = QuantumLayer(qnn, gradient="param_shift", estimator=ExactEstimator())
    counts = step_counts(layer, batch, shots=100)
    measured = {"jobs": len(runs), "pubs": sum(r[0] for r in runs), "executions": sum(r[1] for r in runs)}
    assert measured == {k: counts["estimator_qnn"][k] for k in measured}
    assert measured["jobs"] == 2 and runs[1][0] == batch * 2 * 2 * qnn.num_weights  # B*K*2*p_w PUBs
    calls = []
    est = ExactEstimator()
    pubs = step_pubs(layer, torch.as_tensor(x))
    calls.append(len(pubs))
    estimate(est, pubs)
    assert calls == [2] and counts["ours"]["jobs"] == 1
    assert sum(int(np.prod(np.shape(p[2])[:-1])) for p in pubs) == batch * (1 + 2 * layer._plan_for().num_gates)


def test_resilience_options_change_local_values_and_the_rerun_applies_them(spec, tmp_path):
    """The executor Estimator applies resilience client-side in local testing mode (checked, not assumed)."""
    off = spec.model_copy(update={"resilience": {"measure_mitigation": False}})
    base = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path)
    pending = jobs.submit(off, job_inputs(off), records_dir=tmp_path, wait=False)
    _, rerun = jobs.fetch(pending.record["record_id"], records_dir=tmp_path)
    direct = jobs.submit(off, job_inputs(off), records_dir=tmp_path)
    assert not np.array_equal(base.result[0].data.evs, direct.result[0].data.evs)
    assert np.array_equal(rerun[0].data.evs, direct.result[0].data.evs)


def test_training_step_is_submitted_as_one_job_and_gives_the_layer_gradient(spec, tmp_path):
    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.execution.exact import ExactEstimator
    from qfl_qiskit.qnn import QuantumLayer
    from qfl_qiskit.specs import QFLSpec
    from qfl_qiskit.training.hardware import step_job_inputs

    qnn = build_qfl(QFLSpec(modalities=2, features=1, degree=1, observables=2, observable_seed=3))
    layer = QuantumLayer(qnn, gradient="param_shift", estimator=ExactEstimator())
    x = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (2, qnn.num_inputs)))
    out = jobs.submit(spec, step_job_inputs(layer, x, spec), records_dir=tmp_path)
    assert len(out.record["job_ids"]) == 1 and out.record["cost"]["pubs"] == 2
    assert out.record["values"]["shapes"][1] == [2 * layer._plan_for().num_gates, 2, layer._plan_for().num_gates]
    # the shifted PUB of the job gives the same Jacobian as the layer's own estimator call (exact here)
    exact = estimate(ExactEstimator(), step_pubs(layer, x))
    _, jac = layer._evaluate(layer.circuit_values(x).detach().numpy(), True)
    assert np.allclose(layer._plan_for().jacobian(exact[1].evs), jac)


class RemoteJob:
    """A real-backend job as the service returns it by id (injected: no network)."""

    def __init__(self, state: str, result=None) -> None:
        self.state, self._result, self.cancelled = state, result, False

    def status(self):
        return self.state

    def result(self):
        return self._result

    def cancel(self):
        self.cancelled = True

    def error_message(self):
        return "Error 8000: backend offline" if self.state == "ERROR" else ""


class Service:
    def __init__(self, job: RemoteJob) -> None:
        self.jobs, self._job = [], job

    def job(self, job_id):
        self.jobs.append(job_id)
        return self._job


def test_real_backend_paths_use_the_service_by_job_id(spec, tmp_path):
    local = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path)
    pending = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path, wait=False)
    rid, jid = pending.record["record_id"], pending.record["job_ids"][0]
    store.save(tmp_path, {**store.load(tmp_path, rid), "local": False})  # as if submitted to a real QPU
    queued = Service(RemoteJob("QUEUED"))
    assert jobs.status(rid, records_dir=tmp_path, service=queued)["status"] == "QUEUED"
    with pytest.raises(ExecutionError, match="is QUEUED; fetch again"):
        jobs.fetch(rid, records_dir=tmp_path, service=queued)
    done = Service(RemoteJob("DONE", local.result))
    rec, result = jobs.fetch(rid, records_dir=tmp_path, service=done)
    assert done.jobs == [jid] and rec["status"] == "DONE" and "recovered_by" not in rec
    assert np.array_equal(result[0].data.evs, local.result[0].data.evs)
    assert [h["status"] for h in rec["status_history"]] == ["SUBMITTED", "QUEUED", "DONE"]
    other = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path, wait=False)
    store.save(tmp_path, {**store.load(tmp_path, other.record["record_id"]), "local": False})
    running = RemoteJob("RUNNING")
    jobs.cancel(other.record["record_id"], records_dir=tmp_path, service=Service(running))
    assert running.cancelled


def test_job_record_states_the_runtime_options_that_ran(spec, tmp_path):
    out = jobs.submit(spec, job_inputs(spec), records_dir=tmp_path, dry_run=True)
    resolved = out.record["options"]["runtime_options"]
    assert set(resolved) >= {"twirling", "resilience", "dynamical_decoupling", "default_precision"}
    assert resolved["resilience"]["measure_mitigation"] == (spec.resilience or {}).get("measure_mitigation", True)


def test_cost_and_record_use_the_shots_runtime_really_runs(spec, tmp_path):
    """precision 0.05 asks for 400 shots; with no resilience block Runtime's default level twirls the
    measurements, in whole randomizations of 64 shots: 7 x 64 = 448 run per binding and basis."""
    s = spec.model_copy(update={"precision": 0.05})
    out = jobs.submit(s, job_inputs(s), records_dir=tmp_path)
    cost, rec = out.record["cost"], out.record
    assert cost["requested_shots_per_binding"] == 400 and cost["shots_per_binding"] == 448
    assert cost["shots_executed"]["num_randomizations"] == 7
    assert rec["shots_run"]["shots"] == 400 and rec["shots_run"]["executor_shots_per_pub"] == [64]
    assert rec["options"]["runtime_options"]["twirling"]["enable_measure"] is True
    level0 = jobs.JobSettings(backend=resolve_backend("fake_manila"), precision=0.05, options={"resilience_level": 0})
    assert level0.executed()["per_binding"] == 400  # no twirling: exactly what was asked
