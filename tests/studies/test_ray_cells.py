"""The sweep executor on a real Ray cluster: a local head on 127.0.0.1 with 2 CPUs (`ray start --head` in a
temporary folder, stopped at the end). Records equal the local pool's to the last digit; a worker killed mid-study
is retried; a task lost every time is recorded as failed with its reason; a killed driver resumes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from qfl_qiskit.specs import validate
from qfl_qiskit.specs.study import NoiseStudySpec
from qfl_qiskit.studies import run_study
from qfl_qiskit.studies.executor import Cell, run_cells

from ..conftest import REPO, run_cli

pytestmark = pytest.mark.xdist_group("ray")  # one head for the module (make test: --dist loadgroup)

RAY = Path(sys.executable).with_name("ray")
STUDY = {  # relative circuit path: it reaches the workers only through the staged working_dir
    "name": "ray_small", "scales": [0.0, 0.5, 1.0, 2.0], "mitigations": ["none", "rem"], "seeds": [0],
    "workers": 2, "noise": {"backend": "fake_manila"},
    "expectation": {"circuits": ["circuits/qfl_default.toml"], "bindings": 3},
}
TINY = """
name = "tiny"
seed = 1
[data]
name = "synthetic_parity"
options = {n = 120, num_modalities = 2, features = 2}
[optim]
epochs = 2
batch_size = 32
[[models]]
name = "qfl"
features = 1
observables = 3
[[models]]
name = "lmf"
features = 2
rank = 2
out = 4
"""
VOLATILE = {"seconds", "train_seconds", "wall_time", "created", "epoch_seconds"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """``ray start --head --block`` (SIGTERM stops it and everything it started); yields its address."""
    folder = tempfile.mkdtemp(prefix="qr", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    port = _free_port()
    proc = subprocess.Popen([str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                             "--port", str(port), "--num-cpus", "2", "--temp-dir", folder,
                             "--include-dashboard=false", "--disable-usage-stats"],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # ready when its GCS port accepts connections
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None, "ray start --head exited"
        time.sleep(0.5)
    time.sleep(2)
    yield address
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def pool_cells(tmp_path_factory):
    """The study's cells as the local process pool computes them."""
    out = tmp_path_factory.mktemp("pool")
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        run_study(validate(NoiseStudySpec, STUDY, source="test"), out)
    finally:
        os.chdir(cwd)
    return _cells(out)


def _cells(out: Path) -> dict[str, dict]:
    return {p.name: _strip(json.loads(p.read_text())) for p in (out / "cells").glob("*.json")}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _kill_first_task(killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first Ray worker seen executing a cell (its process title is ``ray::run_in_worker``)."""
    import psutil

    while not stop.is_set():
        for proc in psutil.process_iter(["cmdline"]):
            if " ".join(proc.info["cmdline"] or []).startswith("ray::run_in_worker"):
                time.sleep(0.5)  # inside the cell (importing qiskit, transpiling), not between tasks
                proc.kill()
                killed.append(proc.pid)
                return
        time.sleep(0.05)


def test_noise_study_on_ray_equals_the_pool_and_survives_a_killed_worker(ray_head, pool_cells, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(REPO)
    spec = validate(NoiseStudySpec, STUDY, source="test")
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_task, args=(killed, stop), daemon=True)
    killer.start()
    events = []
    try:
        run_study(spec, tmp_path, ray_address=ray_head, progress=events.append)
    finally:
        stop.set()
    assert killed, "no running cell was found to kill"
    assert _cells(tmp_path) == pool_cells  # every cell finished, the killed one retried, to the last digit
    assert len(pool_cells) == 8 and [e["event"] for e in events].count("cell") == 8
    assert not (tmp_path / "failed.json").exists()


def test_driver_killed_mid_study_resumes_on_ray(ray_head, pool_cells, tmp_path):
    spec_file = tmp_path / "study.toml"
    spec_file.write_text("kind = \"noise_study\"\n" + "\n".join(
        f"{k} = {json.dumps(v)}" for k, v in STUDY.items() if not isinstance(v, dict)) + "\n" + "\n".join(
        f"[{k}]\n" + "\n".join(f"{kk} = {json.dumps(vv)}" for kk, vv in v.items())
        for k, v in STUDY.items() if isinstance(v, dict)) + "\n")
    results = tmp_path / "res"
    driver = subprocess.Popen([str(RAY.with_name("qfl")), "noise-study", str(spec_file),
                               "--results-dir", str(results), "--ray-address", ray_head], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = results / "ray_small" / "cells"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(cells.glob("*.json")) and driver.poll() is None:
        time.sleep(0.05)
    driver.kill()
    driver.wait(timeout=60)
    before = len(list(cells.glob("*.json")))
    assert 0 < before < 8, f"{before} cells when the driver was killed"
    assert not list(cells.glob("*.tmp*"))  # atomic writes: no partial record left
    events = []
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        run_study(validate(NoiseStudySpec, STUDY, source="test"), results / "ray_small", ray_address=ray_head,
                  progress=events.append)
    finally:
        os.chdir(cwd)
    assert events[0] == {"event": "start", "total": 8, "done": before}
    assert _cells(results / "ray_small") == pool_cells


def test_compare_over_seeds_on_ray_equals_the_pool(ray_head, tmp_path, capsys):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY)
    runs = {}
    for name, extra in (("pool", ["--workers", "2"]), ("ray", ["--ray-address", ray_head])):
        code, out, err = run_cli(["compare", str(spec_file), "--results-dir", str(tmp_path / name),
                                  "--seeds", "1,2", *extra], capsys)
        assert code == 0, err
        runs[name] = tmp_path / name
    for seed in (1, 2):
        for label in ("qfl", "lmf"):
            a, b = (json.loads((runs[n] / f"tiny_seed{seed}" / label / "record.json").read_text())
                    for n in ("pool", "ray"))
            assert _strip(a["payload"]) == _strip(b["payload"])  # test metrics and every epoch's losses
        a, b = (json.loads((runs[n] / f"tiny_seed{seed}" / "comparison.json").read_text())["payload"]
                for n in ("pool", "ray"))
        assert _strip(a) == _strip(b)
    summary = json.loads((runs["ray"] / "tiny_seeds" / "summary.json").read_text())["payload"]["models"]
    assert [e["runs"] for e in summary] == [2, 2]


def _always_lost(x: int) -> int:
    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies every time this cell runs
    return x * 10


def test_a_cell_lost_every_time_is_recorded_as_failed_after_bounded_retries(ray_head):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests package
    saved, failed = {}, {}
    out = run_cells(_always_lost, [Cell(f"c{i}", (i,)) for i in range(3)], save=saved.__setitem__,
                    fail=failed.__setitem__, ray_address=ray_head, retries=1)
    assert saved == {"c0": 0, "c2": 20}
    assert list(failed) == ["c1"] == list(out)
    assert "died" in failed["c1"].lower() and "after 1 retries" in failed["c1"]


def _slow(x: int) -> int:
    if x:
        time.sleep(20)
    return x


def test_ctrl_c_cancels_the_running_tasks_and_keeps_the_finished(ray_head):
    import ray
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    saved = {}

    def save(cid, result):  # Ctrl-C arrives while the driver handles the first result
        saved[cid] = result
        raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_cells(_slow, [Cell(f"c{i}", (i,)) for i in range(3)], save=save, fail=lambda *a: None,
                  ray_address=ray_head)
    assert saved == {"c0": 0}
    assert time.monotonic() - t0 < 20  # the running tasks were cancelled, not waited for
    assert not ray.is_initialized()  # disconnected from the cluster


def test_unreachable_cluster_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    spec_file = tmp_path / "s.toml"
    spec_file.write_text('kind = "noise_study"\nname = "x"\nscales = [0.0]\n[noise]\nbackend = "fake_manila"\n'
                         '[expectation]\ncircuits = ["circuits/qfl_default.toml"]\nbindings = 1\n')
    code, _, err = run_cli(["noise-study", str(spec_file), "--results-dir", str(tmp_path),
                            "--ray-address", f"127.0.0.1:{_free_port()}"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "ray start --head" in err
