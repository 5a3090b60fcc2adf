"""`qfl submit` and `qfl jobs ...` end to end in local testing mode, including a submit killed while waiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


from ..conftest import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

TOKEN = "qfl-test-token-XYZ"
CIRCUIT = 'kind = "qfl"\nmodalities = 2\nfeatures = 1\ndegree = 1\nobservables = 2\nobservable_seed = 3\n'
JOB = """kind = "job"
name = "tiny"
backend = "fake_manila"
mode = "batch"
max_time = 120
precision = 0.1
seed = 9
[circuit]
spec = "circuits/tiny.toml"
bindings = 3
seed = 2
[resilience]
measure_mitigation = false  # not the default: the re-run must apply it too
"""


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    (tmp_path / "circuits").mkdir()
    (tmp_path / "circuits" / "tiny.toml").write_text(CIRCUIT)
    (tmp_path / "runtime_jobs").mkdir()
    (tmp_path / "runtime_jobs" / "tiny.toml").write_text(JOB)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def run(argv, capsys):
    return run_cli(argv, capsys)


def records(work: Path) -> list[Path]:
    folder = work / "runtime_jobs" / "records"
    return sorted(p for p in folder.glob("*.json") if not p.name.endswith(".result.json")) if folder.is_dir() else []


def test_dry_run_records_cost_and_submits_nothing(work, capsys):
    code, out, err = run(["submit", "runtime_jobs/tiny.toml", "--dry-run"], capsys)
    assert code == 0, err
    assert "cost estimate" in out and "dry run: nothing submitted" in out
    assert "applies the [resilience] options client-side" in " ".join(out.split())  # rich wraps lines
    [path] = records(work)
    rec = json.loads(path.read_text())
    assert rec["status"] == "DRY_RUN" and rec["job_ids"] == [] and rec["cost"]["bindings"] == 3
    code, out, err = run(["jobs", "fetch", path.stem], capsys)
    assert code == 2 and "dry run" in err and len(err.strip().splitlines()) == 1


def test_max_qpu_seconds_refusal_exits_2_without_a_record(work, capsys):
    code, out, err = run(["submit", "runtime_jobs/tiny.toml", "--max-qpu-seconds", "0.0001"], capsys)
    assert code == 2 and "exceeds --max-qpu-seconds" in err and len(err.strip().splitlines()) == 1
    assert records(work) == [] and not (work / "runtime_jobs" / "records").exists()


def test_killed_submit_is_recovered_by_fetch_in_a_fresh_process(work, capsys):
    env = {**os.environ, "QFL_JOBS_HOLD_AFTER_RECORD": "120", "QISKIT_IBM_TOKEN": TOKEN}
    child = subprocess.Popen([sys.executable, "-c", "from qfl_qiskit.cli import main; main()", "submit",
                              "runtime_jobs/tiny.toml"], cwd=work, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.time() + 60
    rec = None
    while time.time() < deadline and rec is None:
        found = records(work)
        rec = json.loads(found[0].read_text()) if found else None
        rec = rec if rec and rec.get("job_ids") else None
        time.sleep(0.2)
    assert rec is not None, "no record with a job id was written"
    child.send_signal(signal.SIGKILL)
    child_out, child_err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL and rec["status"] == "SUBMITTED"
    assert not (work / "runtime_jobs" / "records" / f"{rec['record_id']}.result.json").exists()
    fetched = subprocess.run([sys.executable, "-c", "from qfl_qiskit.cli import main; main()", "jobs", "fetch",
                              rec["record_id"]], cwd=work, env={**env, "COLUMNS": "200"}, capture_output=True,
                             text=True, timeout=120)
    assert fetched.returncode == 0, fetched.stderr
    assert "recovered by a seeded local re-run" in fetched.stdout
    result = json.loads((work / "results" / "runtime_jobs" / f"{rec['record_id']}.json").read_text())
    # a direct run of the same spec (in this process) gives identical values
    code, out, err = run(["submit", "runtime_jobs/tiny.toml"], capsys)
    assert code == 0, err
    direct = next(p for p in records(work) if p.stem != rec["record_id"])
    code, out, err = run(["jobs", "fetch", direct.stem], capsys)
    assert code == 0, err
    direct_result = json.loads((work / "results" / "runtime_jobs" / f"{direct.stem}.json").read_text())
    assert result["payload"]["pubs"] == direct_result["payload"]["pubs"]
    assert len(result["payload"]["pubs"][0]["evs"]) == 3
    # the planted token is in no file under the run's folders and in no output line
    texts = [child_out.decode(), child_err.decode(), fetched.stdout, fetched.stderr, out, err]
    assert not any(TOKEN in t for t in texts)
    for path in work.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_list_status_cancel_and_corrupt_record(work, capsys):
    code, out, err = run(["submit", "runtime_jobs/tiny.toml"], capsys)
    assert code == 0, err
    [path] = records(work)
    rid = path.stem
    code, out, err = run(["jobs", "list"], capsys)
    assert code == 0 and rid in out and "DONE" in out
    code, out, err = run(["jobs", "status", rid], capsys)
    assert code == 0 and "SUBMITTED" in out and "DONE" in out
    code, out, err = run(["jobs", "cancel", rid], capsys)
    assert code == 2 and "already finished (DONE); nothing to cancel" in err and len(err.strip().splitlines()) == 1
    bad = path.parent / "20260101T000000Z_broken_abcdef.json"
    bad.write_bytes(b"\x00not json{")
    before = bad.read_bytes()
    code, out, err = run(["jobs", "fetch", bad.stem], capsys)
    assert code == 2 and "corrupt" in err and len(err.strip().splitlines()) == 1
    assert bad.read_bytes() == before
    code, out, err = run(["jobs", "list"], capsys)
    assert code == 0 and "CORRUPT" in out and rid in out


def test_bad_inputs_give_one_line_and_exit_2(work, capsys):
    (work / "runtime_jobs" / "bad.toml").write_text(JOB.replace('mode = "batch"', 'mode = "session"\nshotz = 3'))
    code, out, err = run(["submit", "runtime_jobs/bad.toml"], capsys)
    assert code == 2 and "unknown key 'shotz'" in err and len(err.strip().splitlines()) == 1
    (work / "runtime_jobs" / "nomax.toml").write_text(JOB.replace('mode = "batch"\nmax_time = 120',
                                                                  'mode = "session"'))
    code, out, err = run(["submit", "runtime_jobs/nomax.toml"], capsys)
    assert code == 2 and "needs max_time" in err
    code, out, err = run(["jobs", "fetch", "../../etc/passwd"], capsys)
    assert code == 2 and "not a job record id" in err
    code, out, err = run(["jobs", "status", "nope"], capsys)
    assert code == 2 and "no job record 'nope'" in err


TRAIN = """
name = "tiny"
seed = 1
[data]
name = "synthetic_parity"
options = {n = 120, num_modalities = 2, features = 2}
[optim]
epochs = 1
batch_size = 32
[[models]]
name = "qfl"
features = 1
observables = 2
"""


def test_model_job_prints_hardware_and_exact_metrics(work, capsys):
    (work / "train.toml").write_text(TRAIN)
    code, out, err = run(["train", "train.toml", "--results-dir", "results"], capsys)
    assert code == 0, err
    (work / "runtime_jobs" / "model.toml").write_text(
        'kind = "job"\nname = "m"\nbackend = "fake_manila"\nmode = "job"\nprecision = 0.1\nseed = 1\n'
        '[model]\nfolder = "results/tiny/qfl"\nsamples = 6\n')
    code, out, err = run(["submit", "runtime_jobs/model.toml"], capsys)
    assert code == 0, err
    [path] = records(work)
    code, out, err = run(["jobs", "fetch", path.stem], capsys)
    assert code == 0, err
    assert "hardware" in out and "exact" in out and "accuracy" in out
    payload = json.loads((work / "results" / "runtime_jobs" / f"{path.stem}.json").read_text())["payload"]
    assert len(payload["predictions"]) == 6 and 0 <= payload["metrics"]["accuracy"] <= 1
