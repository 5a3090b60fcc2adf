"""Resume state, disk errors and size refusals: the paths the parametrised bad-input suite cannot reach with a
single command (a run first, then a changed or damaged state; failures injected at the file system)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qfl_qiskit.atomic import Stage, atomic_write_json

from ..conftest import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

QFL = 'kind = "qfl"\nmodalities = 2\nfeatures = 1\ndegree = 1\nobservables = 2\n'
STUDY = """kind = "noise_study"
name = "s"
scales = [1.0]
mitigations = ["none"]
seeds = [0]
workers = 1
plateau = false
[noise]
backend = "{backend}"
[expectation]
circuits = ["c.toml"]
bindings = {bindings}
"""


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")
    (tmp_path / "c.toml").write_text(QFL)
    return tmp_path


def test_study_resume_refuses_cells_of_another_spec_and_fresh_starts_over(work, capsys):
    (work / "s.toml").write_text(STUDY.format(backend="fake_manila", bindings=2))
    code, out, err = run_cli(["noise-study", "s.toml", "--results-dir", "res"], capsys)
    assert code == 0, err
    first = json.loads((work / "res/s/study.json").read_text())
    # same name, another backend and binding count: the stored cell must not be reused
    (work / "s.toml").write_text(STUDY.format(backend="fake_lima", bindings=3))
    before = {p: p.read_bytes() for p in (work / "res").rglob("*") if p.is_file()}
    code, out, err = run_cli(["noise-study", "s.toml", "--results-dir", "res"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "different study spec" in err, err
    assert {p: p.read_bytes() for p in (work / "res").rglob("*") if p.is_file()} == before
    # a changed circuit file is a different study too
    (work / "s.toml").write_text(STUDY.format(backend="fake_manila", bindings=2))
    (work / "c.toml").write_text(QFL.replace("observables = 2", "observables = 3"))
    code, out, err = run_cli(["noise-study", "s.toml", "--results-dir", "res"], capsys)
    assert code == 2 and "different study spec" in err
    (work / "c.toml").write_text(QFL)
    (work / "s.toml").write_text(STUDY.format(backend="fake_lima", bindings=3))
    code, out, err = run_cli(["noise-study", "s.toml", "--results-dir", "res", "--fresh"], capsys)
    assert code == 0, err
    second = json.loads((work / "res/s/study.json").read_text())
    assert second["specs"]["study"]["noise"]["backend"] == "fake_lima"
    assert second["payload"]["cells"][0]["fingerprint"] != first["payload"]["cells"][0]["fingerprint"]
    assert second["payload"]["summary"][0]["mae"] != first["payload"]["summary"][0]["mae"]


def test_train_resume_with_an_incomplete_checkpoint_says_what_to_do(work, capsys):
    (work / "t.toml").write_text('kind = "train"\nname = "t"\n[data]\nname = "synthetic_parity"\n'
                                 'options = {num_modalities = 2, features = 1, n = 120}\n[optim]\nepochs = 1\n'
                                 '[[models]]\nname = "concat"\n')
    code, out, err = run_cli(["train", "t.toml", "--results-dir", "res"], capsys)
    assert code == 0, err
    ckpt = work / "res/t/concat/checkpoint.pt"
    state = torch.load(ckpt, weights_only=False)
    del state["optimizer"]
    torch.save(state, ckpt)
    code, out, err = run_cli(["train", "t.toml", "--results-dir", "res", "--resume"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "incomplete" in err and "'optimizer'" in err and "without --resume" in err
    ckpt.write_bytes(b"\x80\x04garbage")
    code, out, err = run_cli(["train", "t.toml", "--results-dir", "res", "--resume"], capsys)
    assert code == 2 and "cannot read checkpoint" in err and len(err.strip().splitlines()) == 1


def test_a_full_disk_mid_write_leaves_no_file_and_one_line(work, capsys, monkeypatch):
    import qfl_qiskit.atomic as atomic

    real, calls = atomic._write_temp, []

    def fail_second(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(atomic, "_write_temp", fail_second)
    code, out, err = run_cli(["circuit", "build", "c.toml", "--out-dir", "deep/out", "--draw", "pics/c.png"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "No space left on device" in err and "free disk space" in err
    assert tree(work) == ["c.toml"]  # no QPY, no QASM, no PNG, no temporary file, no folder made for them


def test_stage_rollback_keeps_replaced_files_whole(tmp_path, monkeypatch):
    old = tmp_path / "a.json"
    old.write_text('{"old": true}')
    stage = Stage().add(old, "new").add(tmp_path / "sub" / "b.txt", "b")
    real = os.replace

    def fail_on_second(src, dst):
        if str(dst).endswith("b.txt"):
            raise OSError(errno.EIO, "I/O error", str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_second)
    with pytest.raises(OSError):
        stage.commit()
    assert tree(tmp_path) == ["a.json"] and old.read_text() == "new"  # replaced whole, never half


def test_records_are_strict_json(tmp_path):
    path = atomic_write_json(tmp_path / "r.json", {"mae": float("nan"), "rows": [1.0, float("inf")]})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}")) == {
        "mae": None, "rows": [1.0, None]}


def test_job_record_is_placed_before_its_artifacts():
    from qfl_qiskit.runtime import records as store

    stage = Stage()
    store.write_circuits(Path("rec"), "r", [], stage=stage)
    store.write_values(Path("rec"), "r", [], stage=stage)
    store.stage_record(stage, Path("rec"), {"record_id": "r"})
    assert [p.name for p in stage.paths] == ["r.json", "r.qpy", "r.values.npz"]


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs root and unshare for a private read-only bind mount")
def test_read_only_output_folder_in_a_real_process(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "c.toml").write_text(QFL)
    script = (f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
              f"{sys.executable} -c 'from qfl_qiskit.cli import main; main()' circuit build c.toml --out-dir {ro}/x")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "not writable" in proc.stderr and "Traceback" not in proc.stderr
    assert list(ro.iterdir()) == []


SIZE_CASES = {
    "qfl-modalities": (["circuit", "build", "s.toml"], 'kind = "qfl"\nmodalities = 100000\n'),
    "qfl-degree": (["circuit", "build", "s.toml"], 'kind = "qfl"\ndegree = 1000000000\n'),
    "mma-qubits": (["circuit", "build", "s.toml"], 'kind = "mma"\nmodalities = 300\n'),
    "generic-backend": (["transpile-report", "s.toml", "-b", "generic_100000"], 'kind = "qfl"\n'),
    "transpile-seeds": (["transpile-report", "s.toml", "--seeds", "1000000000"], 'kind = "qfl"\n'),
    "data-n": (["train", "s.toml"], 'kind = "train"\n[data]\nname = "synthetic_parity"\n'
                                     'options = {n = 1000000000000}\n[[models]]\nname = "qfl"\n'),
    "study-bindings": (["noise-study", "s.toml"], 'kind = "noise_study"\n[expectation]\nbindings = 1000000000\n'),
    "study-seeds": (["noise-study", "s.toml"], 'kind = "noise_study"\nseeds = [' + ", ".join(map(str, range(5000)))
                    + "]\n"),
    "snapshot-generic": (["noise", "snapshot", "generic_100000", "--out-dir", "nm"], ""),
}


@pytest.mark.parametrize("name", list(SIZE_CASES))
def test_sizes_that_cannot_fit_are_refused_before_allocating(name, tmp_path):
    argv, text = SIZE_CASES[name]
    (tmp_path / "s.toml").write_text(text)
    code, err, peak_mb = _run_measured(argv, cwd=tmp_path)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert any(word in lines[0] for word in ("limit", "at most", "less than")), lines[0]
    assert peak_mb < 300, f"peak memory {peak_mb:.0f} MB"
    assert tree(tmp_path) == ["s.toml"]


CHILD = """
import atexit, re


def _peak():  # VmHWM: this process's own peak resident memory (ru_maxrss keeps the parent's across fork + exec)
    with open("/proc/self/status") as f:
        kb = re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)
    with open("peak_kb.txt", "w") as out:
        out.write(kb)


atexit.register(_peak)
from qfl_qiskit.cli import main
main()
"""


def _run_measured(argv: list[str], *, cwd: Path) -> tuple[int, str, float]:
    """Run ``qfl`` in a child process; (exit code, stderr, the child's peak resident memory in MB).

    A 60 s timeout guards against a run that allocates instead of refusing (a guard, not a timing assertion).
    """
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, *argv], cwd=cwd, capture_output=True, text=True,
                              timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"qfl {' '.join(argv)} still running after 60 s: the size was not refused")
    peak = cwd / "peak_kb.txt"
    mb = int(peak.read_text()) / 1024
    peak.unlink()
    return proc.returncode, proc.stderr, mb


def _processes_in(folder: Path) -> list[int]:
    """PIDs of processes whose working directory is ``folder`` (the study's driver and its workers)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")) == folder:
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the worker processes")
def test_killed_study_leaves_no_worker_processes_and_resumes(tmp_path):
    import signal
    import time

    (tmp_path / "c.toml").write_text('kind = "qfl"\nmodalities = 6\nfeatures = 2\ndegree = 2\n')
    (tmp_path / "s.toml").write_text(STUDY.format(backend="fake_manila", bindings=300).replace(
        "scales = [1.0]", "scales = [0.5, 1.0, 2.0]").replace("seeds = [0]", "seeds = [0, 1]").replace(
        "workers = 1", "workers = 2"))
    cmd = [sys.executable, "-c", "from qfl_qiskit.cli import main; main()", "noise-study", "s.toml"]
    driver = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = tmp_path / "results" / "s" / "cells"
    deadline = time.time() + 120
    while time.time() < deadline and not (cells.is_dir() and any(cells.glob("*.json"))):
        time.sleep(0.2)
    assert len(_processes_in(tmp_path)) >= 2, "the workers were not running"
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    deadline = time.time() + 15
    while time.time() < deadline and _processes_in(tmp_path):
        time.sleep(0.2)
    assert _processes_in(tmp_path) == [], "workers of the killed driver are still running"
    resumed = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(cells.glob("*.json"))) == 6
