"""Training on a device through Runtime (local testing mode on fake_manila, a tiny QFL; injected service objects
for the real-device path): one job per step, ids before waiting, budget, crash-safe resume, retries, cancels,
expired sessions, resilience options, no credentials in any file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from qfl_qiskit.errors import SpecError
from qfl_qiskit.runtime import jobs
from qfl_qiskit.runtime import records as store
from qfl_qiskit.runtime.service import RetryPolicy
from qfl_qiskit.specs.base import validate
from qfl_qiskit.specs.train import TrainSpec
from qfl_qiskit.training import prepare_data, train_models
from qfl_qiskit.training.qpu import Hooks
from qfl_qiskit.training.qpu_jobs import RunInterrupted, RunStopped, StepRunner

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

BASE = {
    "name": "tiny_qpu", "seed": 3,
    "data": {"name": "synthetic_parity", "options": {"n": 60, "num_modalities": 2, "features": 2}},
    "model": {"name": "qfl", "features": 1, "degree": 1, "observables": 3},
    "optim": {"lr": 0.05, "batch_size": 4, "epochs": 1},
    "execution": {"estimator": "runtime", "backend": "fake_manila", "gradient": "param_shift", "shots": 200,
                  "steps": 3},
}


def make_spec(**execution) -> TrainSpec:
    data = json.loads(json.dumps(BASE))
    data["execution"].update(execution)
    return validate(TrainSpec, data, source="test")


@pytest.fixture(scope="module")
def splits():
    return prepare_data(make_spec())


class Counting:
    """A submit function that runs Runtime's real (local) Estimator and counts submissions."""

    def __init__(self, fail: int = 0, status: str = "ERROR", raise_on_submit: Exception | None = None):
        self.calls, self.fail, self.status, self.raise_on_submit = 0, fail, status, raise_on_submit

    def __call__(self, pubs, precision, mode_obj):
        from qfl_qiskit.runtime.service import make_estimator

        self.calls += 1
        if self.raise_on_submit is not None:
            raise self.raise_on_submit
        if self.calls <= self.fail:
            return Broken(self.status, f"job-{self.calls}")
        return make_estimator(mode_obj, shots=200, seed=0, resilience=None,
                              options={"resilience_level": 0}).run(list(pubs), precision=precision)


class Broken:
    """A job that failed (or was cancelled) on the service."""

    def __init__(self, status: str, job_id: str):
        self._status, self._id = status, job_id

    def job_id(self):
        return self._id

    def status(self):
        return self._status

    def error_message(self):
        return "qubit calibration in progress" if self._status == "ERROR" else "cancelled"

    def result(self):
        raise RuntimeError(f"job {self._status}")


def run(spec, tmp_path, splits, **hooks):
    return train_models(spec, out_dir=tmp_path, splits=splits, hooks=Hooks(sleep=lambda s: None, **hooks))


def weights(folder: Path) -> dict:
    return torch.load(folder / "model.pt", weights_only=False)["state"]


def test_each_step_is_one_job_with_its_id_recorded_before_the_wait(tmp_path, splits):
    spec = make_spec()
    counting, seen = Counting(), []

    def hook(path):
        rec = store.load(path.parent, path.stem)
        seen.append((rec["status"], rec["job_ids"], rec["result_file"]))

    record = run(spec, tmp_path, splits, submit_fn=counting, wait_hook=hook)
    folder = tmp_path / "tiny_qpu" / "qfl"
    saved = json.loads((folder / "record.json").read_text())
    hist = saved["payload"]["history"]
    assert counting.calls == 3 == len(hist) == len(seen)
    assert all(s == "SUBMITTED" and len(ids) == 1 and res is None for s, ids, res in seen)
    assert [h["job_id"] for h in hist] == [ids[0] for _, ids, _ in seen]
    # one job holds forward and every shifted binding: bindings = B * (1 + 2G) of the ISA circuit
    rec1 = store.load(folder / "jobs", "step00001-1")
    shapes = rec1["values"]["shapes"]
    assert len(shapes) == 2 and shapes[1][0] == 2 * shapes[1][-1] and shapes[0][0] == shapes[1][1] == 4
    qpu = saved["payload"]["qpu"]
    assert qpu["steps_done"] == 3 and qpu["stop_reason"] is None and qpu["local"]
    assert qpu["job_options"]["runtime_options"]["resilience_level"] == 0  # stated, not Runtime's default
    assert qpu["isa"][0]["report"]["backend"] == "fake_manila" and (folder / "isa.qpy").is_file()
    assert rec1["shots_run"]["executor_shots_per_pub"] == [200, 200]
    assert record["payload"]["models"][0]["qpu"]["steps_done"] == 3
    assert (folder / "learning_curve.png").stat().st_size > 10_000


def test_budget_refuses_before_any_job_and_writes_nothing(tmp_path, splits):
    counting = Counting()
    with pytest.raises(jobs.CostLimitError, match="nothing submitted"):
        run(make_spec(max_qpu_seconds=1.0), tmp_path, splits, submit_fn=counting)
    assert counting.calls == 0 and not (tmp_path / "tiny_qpu").exists()


def _per_step_seconds(tmp_path, splits) -> float:
    run(make_spec(steps=1), tmp_path / "probe", splits)
    saved = json.loads((tmp_path / "probe" / "tiny_qpu" / "qfl" / "record.json").read_text())
    return saved["payload"]["history"][0]["qpu_seconds_estimated"]


def test_budget_reached_mid_run_stops_with_a_checkpoint_and_a_larger_budget_continues(tmp_path, splits):
    per_step = _per_step_seconds(tmp_path, splits)  # every batch here has 4 samples: the same estimate each step
    seen = []

    def stop_third(path):
        seen.append(path)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted, match="local testing mode job"):
        run(make_spec(max_qpu_seconds=per_step * 10), tmp_path, splits, submit_fn=Counting(), wait_hook=stop_third)
    folder = tmp_path / "tiny_qpu" / "qfl"
    assert torch.load(folder / "checkpoint.pt", weights_only=False)["step"] == 2
    # a smaller budget on resume: 2 steps used, a third would pass 2.5 steps' worth -> stops before submitting
    counting = Counting()
    train_models(make_spec(max_qpu_seconds=per_step * 2.5), out_dir=tmp_path, splits=splits, resume=True,
                 hooks=Hooks(submit_fn=counting, sleep=lambda s: None))
    saved = json.loads((folder / "record.json").read_text())
    qpu = saved["payload"]["qpu"]
    assert counting.calls == 0 and qpu["stop_reason"] == "budget reached" and qpu["steps_done"] == 2
    assert qpu["qpu_seconds"]["used"] == pytest.approx(2 * per_step)
    # the budget raised: the run continues from its checkpoint to the last step (the cut-off step re-run locally)
    train_models(make_spec(max_qpu_seconds=per_step * 3.5), out_dir=tmp_path, splits=splits, resume=True,
                 hooks=Hooks(submit_fn=counting, sleep=lambda s: None))
    qpu = json.loads((folder / "record.json").read_text())["payload"]["qpu"]
    assert qpu["steps_done"] == 3 and qpu["stop_reason"] is None and counting.calls == 0


KILL_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, warnings
    warnings.filterwarnings("ignore")
    from pathlib import Path
    from qfl_qiskit.specs.base import validate
    from qfl_qiskit.specs.train import TrainSpec
    from qfl_qiskit.training import train_models
    from qfl_qiskit.training.qpu import Hooks
    spec = validate(TrainSpec, json.loads(sys.argv[1]), source="test")
    seen = []
    def hook(path):
        seen.append(path)
        if len(seen) == 2:  # step 2's job id is recorded; the process dies while "waiting"
            os.kill(os.getpid(), signal.SIGKILL)
    train_models(spec, out_dir=Path(sys.argv[2]), hooks=Hooks(wait_hook=hook))
""")


def test_kill_during_a_wait_then_resume_spends_no_second_job_and_matches(tmp_path, splits):
    spec = make_spec(steps=3)
    whole: list = []
    run(spec, tmp_path / "whole", splits, on_submit=whole.append)  # Runtime's own (local) submission path
    assert len(whole) == 3
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, spec.model_dump_json(), str(tmp_path / "cut")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-500:]
    folder = tmp_path / "cut" / "tiny_qpu" / "qfl"
    assert store.load(folder / "jobs", "step00002-1")["status"] == "SUBMITTED"
    submitted: list = []
    train_models(spec, out_dir=tmp_path / "cut", resume=True, splits=splits, hooks=Hooks(on_submit=submitted.append))
    assert [r["record_id"] for r in submitted] == ["step00003-1"]  # step 3 only: step 2's job is recovered (local: seeded re-run), not submitted
    rec2 = store.load(folder / "jobs", "step00002-1")
    assert rec2["recovered_by"] == "seeded local re-run" and rec2["status"] == "DONE"
    a, b = weights(tmp_path / "whole" / "tiny_qpu" / "qfl"), weights(folder)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_job_that_fails_twice_then_succeeds(tmp_path, splits):
    counting = Counting(fail=2)
    waits = []
    train_models(make_spec(steps=1), out_dir=tmp_path, splits=splits,
                 hooks=Hooks(submit_fn=counting, sleep=waits.append, retry=RetryPolicy(base=2.0)))
    folder = tmp_path / "tiny_qpu" / "qfl" / "jobs"
    statuses = [store.load(folder, f"step00001-{i}")["status"] for i in (1, 2, 3)]
    assert statuses == ["ERROR", "ERROR", "DONE"] and counting.calls == 3 and waits == [2.0, 4.0]
    assert "qubit calibration" in store.load(folder, "step00001-1")["status_history"][-1]["error"]


def test_a_job_failing_every_time_stops_with_one_line_and_a_resumable_checkpoint(tmp_path, splits):
    with pytest.raises(RunStopped, match="step 1: 2 jobs failed in a row") as info:
        train_models(make_spec(steps=2, job_retries=1), out_dir=tmp_path, splits=splits,
                     hooks=Hooks(submit_fn=Counting(fail=99), sleep=lambda s: None))
    assert "\n" not in str(info.value) and "--resume" in str(info.value)
    counting = Counting()
    train_models(make_spec(steps=2, job_retries=1), out_dir=tmp_path, splits=splits, resume=True,
                 hooks=Hooks(submit_fn=counting, sleep=lambda s: None))
    assert counting.calls == 2
    assert store.load(tmp_path / "tiny_qpu" / "qfl" / "jobs", "step00001-3")["status"] == "DONE"


def test_a_cancelled_job_stops_the_run_and_resume_submits_the_step_again(tmp_path, splits):
    with pytest.raises(RunStopped, match="cancelled"):
        run(make_spec(steps=1), tmp_path, splits, submit_fn=Counting(fail=1, status="CANCELLED"))
    counting = Counting()
    train_models(make_spec(steps=1), out_dir=tmp_path, splits=splits, resume=True,
                 hooks=Hooks(submit_fn=counting, sleep=lambda s: None))
    assert counting.calls == 1
    assert store.load(tmp_path / "tiny_qpu" / "qfl" / "jobs", "step00001-2")["status"] == "DONE"


def test_an_expired_session_stops_cleanly(tmp_path, splits):
    spec = make_spec(steps=2, mode="session", max_time=60)
    from qiskit_ibm_runtime.exceptions import IBMRuntimeError

    # what qiskit-ibm-runtime 0.51's Session raises for a job submitted after it closed (session.py)
    expired = Counting(raise_on_submit=IBMRuntimeError("The session is closed."))
    with pytest.raises(RunStopped, match="no longer accepts jobs.*new session"):
        run(spec, tmp_path, splits, submit_fn=expired)
    assert expired.calls == 1  # not retried: a closed session refuses every job


@pytest.mark.parametrize("mitigation", [
    {"techniques": ["rem"]},                                     # TREX (+ measurement twirling)
    {"techniques": ["zne"], "scale_factors": [1.0, 3.0]},        # ZNE, gate folding
    {"techniques": [], "twirling": True},                        # gate twirling
    {"techniques": ["ddd"]},                                     # dynamical decoupling
])
def test_runtime_resilience_options_run_and_are_recorded(tmp_path, splits, mitigation):
    spec = make_spec(steps=1, runtime_mitigation=mitigation, shots=100)
    run(spec, tmp_path, splits)
    folder = tmp_path / "tiny_qpu" / "qfl"
    rec = store.load(folder / "jobs", "step00001-1")
    resolved = rec["options"]["runtime_options"]
    executed = rec["cost"]["shots_executed"]
    if "rem" in mitigation["techniques"]:
        assert resolved["resilience"]["measure_mitigation"] and resolved["twirling"]["enable_measure"]
        # twirling rounds 100 shots to whole randomizations of 64: 2 x 64 = 128 run per binding and basis
        assert executed["per_binding"] == 128 and rec["shots_run"]["executor_shots_per_pub"] == [64, 64]
    if "zne" in mitigation["techniques"]:
        assert resolved["resilience"]["zne_mitigation"] and executed["noise_factors"] == [1.0, 3.0]
        assert all(isinstance(s, list) and len(s) == 2 for s in rec["shots_run"]["executor_shots_per_pub"])
    if mitigation.get("twirling"):
        assert resolved["twirling"]["enable_gates"] and not resolved["resilience"]["measure_mitigation"]
    if "ddd" in mitigation["techniques"]:
        assert resolved["dynamical_decoupling"]["enable"]
    assert resolved["resilience_level"] == 0


def test_pea_learns_the_layer_noise_once_and_every_step_uses_it(tmp_path, splits):
    spec = make_spec(steps=1, shots=64, runtime_mitigation={"techniques": ["zne"], "scale_factors": [1.0, 3.0],
                                                             "runtime_amplifier": "pea"})
    submitted: list = []
    run(spec, tmp_path, splits, on_submit=submitted.append)
    folder = tmp_path / "tiny_qpu" / "qfl"
    learning = json.loads((folder / "noise_learning.json").read_text())
    assert learning["status"] == "DONE" and learning["job_id"] and learning["layers"] >= 1
    assert len(learning["maps"]) == learning["layers"] and all(m["terms"] for m in learning["maps"])
    for step in (1,):  # (kept short: every step gets the settings the learned model was attached to once)
        rec = store.load(folder / "jobs", f"step0000{step}-1")
        assert rec["options"]["layer_noise"] == learning["maps"]  # one learned model for the whole run
        assert rec["options"]["runtime_options"]["resilience"]["zne"]["amplifier"] == "pea"
        _, result = jobs.fetch(rec["record_id"], records_dir=folder / "jobs")  # the stored result
        assert result[0].data.evs_noise_factors.shape[-1] == 2  # both amplified noise factors ran
    assert len(submitted) == 1
    qpu = json.loads((folder / "record.json").read_text())["payload"]["qpu"]
    assert qpu["noise_learning"]["job_id"] == learning["job_id"] and "maps" not in qpu["noise_learning"]
    # a PEA step re-run from its record (local recovery) attaches the same learned model
    import shutil

    shutil.copytree(folder / "jobs", tmp_path / "rerun")
    store.save(tmp_path / "rerun", {**store.load(tmp_path / "rerun", "step00001-1"), "result_file": None,
                                    "status": "SUBMITTED"})
    again, result = jobs.fetch("step00001-1", records_dir=tmp_path / "rerun")
    assert again["recovered_by"] == "seeded local re-run" and jobs.pub_results(result)[0].evs.shape[0] == 4


def test_our_zne_around_runtime_stays_inside_the_one_job(tmp_path, splits):
    counting = Counting()
    run(make_spec(steps=1, mitigation={"techniques": ["zne"], "scale_factors": [1.0, 3.0], "folding": "global"}),
        tmp_path, splits, submit_fn=counting)
    rec = store.load(tmp_path / "tiny_qpu" / "qfl" / "jobs", "step00001-1")
    assert counting.calls == 1 and len(rec["values"]["shapes"]) == 4  # (forward, shifts) x 2 scale factors


def test_fine_tuning_starts_from_a_trained_model(tmp_path, splits):
    exact = validate(TrainSpec, {**{k: v for k, v in BASE.items() if k != "execution"},
                                 "optim": {"lr": 0.05, "batch_size": 8, "epochs": 2}}, source="t")
    train_models(exact, out_dir=tmp_path, splits=splits)
    spec = make_spec(steps=1, init_from=str(tmp_path / "tiny_qpu"))
    spec = spec.model_copy(update={"name": "tuned"})
    run(spec, tmp_path, splits)
    saved = json.loads((tmp_path / "tuned" / "qfl" / "record.json").read_text())
    before = saved["payload"]["qpu"]["exact_metrics"]["before"]["test"]
    trained = json.loads((tmp_path / "tiny_qpu" / "qfl" / "record.json").read_text())["payload"]["test"]
    assert before == trained  # the run started from those weights
    assert saved["payload"]["qpu"]["init_from"]["sha256"] and saved["payload"]["qpu"]["init_from"]["label"] == "qfl"
    data = json.loads(make_spec(steps=1, init_from=str(tmp_path / "tiny_qpu")).model_dump_json())
    data["models"] = [{"name": "qfl", "features": 1, "degree": 2, "observables": 3}]  # another architecture
    other = validate(TrainSpec, data, source="t")
    with pytest.raises(SpecError, match="is not the one this spec trains"):
        run(other, tmp_path / "x", splits)


def test_a_planted_token_is_written_nowhere(tmp_path, splits, monkeypatch):
    token = "qfl-test-token-5f0c2b8e9a1d"
    monkeypatch.setenv("QISKIT_IBM_TOKEN", token)
    run(make_spec(steps=1), tmp_path, splits)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 6 and not any(token.encode() in p.read_bytes() for p in files)


# -- the real-device path, with an injected service --------------------------------------------------------------

class _Real(jobs.JobSettings):
    @property
    def local(self) -> bool:  # a fake backend standing in for a device: jobs are looked up through the service
        return False


class RealJob:
    def __init__(self, inner, job_id):
        self.inner, self._id = inner, job_id

    def job_id(self):
        return self._id

    def status(self):
        return "DONE"

    def result(self):
        return self.inner.result()

    def usage(self):
        return 2.5


class Service:
    def __init__(self):
        self.store, self.by_tag, self.lookups = {}, {}, []

    def job(self, job_id):
        self.lookups.append(job_id)
        return self.store[job_id]

    def jobs(self, job_tags, limit):
        return [self.by_tag[tuple(job_tags)]] if tuple(job_tags) in self.by_tag else []


def _manila():
    from qfl_qiskit.transpile import resolve_backend

    return resolve_backend("fake_manila")


MANILA = _manila()


def _runner(tmp_path, service, submit_fn, **kw):
    settings = _Real(backend=MANILA, mode="job", precision=None, shots=100, seed=None,
                     options={"resilience_level": 0})
    return StepRunner(settings, tmp_path, tag="qfl-run", specs={}, seed=0, service=service, submit_fn=submit_fn,
                      sleep=lambda s: None, **kw)


def _pubs():
    from qiskit.circuit.library import real_amplitudes
    from qiskit.quantum_info import SparsePauliOp

    from qfl_qiskit.execution.base import layout_observables, v2_observables
    from qfl_qiskit.transpile import resolve_backend, transpile_sweep

    isa = transpile_sweep(real_amplitudes(2, reps=1), resolve_backend("fake_manila"), seeds=1)[0]
    obs = layout_observables(isa, [SparsePauliOp("ZI"), SparsePauliOp("IZ")])
    return [(isa, v2_observables(obs, 1), np.random.default_rng(0).uniform(-1, 1, (3, isa.num_parameters)))]


def test_real_device_resume_fetches_the_job_by_id_and_records_billed_seconds(tmp_path):
    service, pubs = Service(), _pubs()

    def submit(v2, precision, mode):
        job = RealJob(Counting()(v2, precision, mode), "real-1")
        service.store["real-1"] = job
        return job

    def interrupt(path):
        raise KeyboardInterrupt

    first = _runner(tmp_path, service, submit, wait_hook=interrupt)
    with pytest.raises(RunInterrupted, match="real-1 of step 1 is queued or running.*--resume.*qfl jobs cancel"):
        first.run(1, pubs, MANILA, cost={}, info={})
    second = _runner(tmp_path, service, lambda *a: pytest.fail("submitted twice"))
    record, result = second.run(1, pubs, MANILA, cost={}, info={})
    assert second.submissions == 0 and service.lookups == ["real-1"]
    assert record["status"] == "DONE" and record["qpu_seconds_reported"] == 2.5
    assert jobs.pub_results(result)[0].evs.shape == (3, 2)


def test_a_job_cut_off_before_its_id_was_recorded_is_found_by_its_tag(tmp_path):
    service, pubs = Service(), _pubs()
    runner = _runner(tmp_path, service, None)
    settings = runner._settings(1, "step00001-1")
    jobs.prepare(pubs, settings, records_dir=tmp_path, record_id="step00001-1", specs={}, info={}, cost={})
    service.by_tag[("qfl-run", "step00001-1")] = RealJob(Counting()(pubs, None, settings.backend), "real-7")
    runner.submit_fn = lambda *a: pytest.fail("submitted twice")
    record, _ = runner.run(1, pubs, MANILA, cost={}, info={})
    assert record["job_ids"] == ["real-7"] and record["recovered_by"] == "job tag" and runner.submissions == 0
    # no job under that tag: the step is submitted (once)
    calls = Counting()
    other = _runner(tmp_path / "b", Service(), calls)
    jobs.prepare(pubs, other._settings(1, "step00001-1"), records_dir=tmp_path / "b", record_id="step00001-1",
                 specs={}, info={}, cost={})
    other.run(1, pubs, MANILA, cost={}, info={})
    assert calls.calls == 1


def test_a_second_run_under_the_same_name_is_refused_up_front_and_changes_nothing(tmp_path, splits):
    run(make_spec(steps=1), tmp_path, splits)
    folder = tmp_path / "tiny_qpu" / "qfl"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    changed = make_spec(steps=1).model_copy(update={"optim": make_spec().optim.model_copy(update={"lr": 0.01})})
    with pytest.raises(SpecError, match="already holds a device run.*--resume"):
        run(changed, tmp_path, splits)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    estimate = train_models(changed, out_dir=tmp_path, splits=splits, dry_run=True)  # an estimate is always fine
    assert estimate["payload"]["models"][0]["projection"]["steps"] == 1
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    # the same spec resumed with one step more: the record says where it resumed from
    train_models(make_spec(steps=2), out_dir=tmp_path, splits=splits, resume=True,  # one step more
                 hooks=Hooks(sleep=lambda s: None))
    saved = json.loads((folder / "record.json").read_text())["payload"]
    assert saved["resumed_from"] == 1 and saved["qpu"]["steps_done"] == 2
