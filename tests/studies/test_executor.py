"""The sweep executor without a cluster: in this process and in a local pool; failures, crashes, staging."""

from __future__ import annotations

import os
import signal
import socket

import pytest
import torch

from qfl_qiskit.errors import QflError
from qfl_qiskit.studies.executor import Cell, check_cluster, run_cells, stage_files


def _cell(x: int) -> tuple[int, int]:
    if x == 1:
        raise ValueError("bad cell")
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # a worker lost (as an out-of-memory kill would)
    return x, torch.get_num_threads()


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_cells_are_recorded_and_the_others_saved(workers):
    saved, failed, events = {}, {}, []
    xs = [0, 1, 3] if workers == 1 else [0, 1, 2, 3, 4]  # (a crash in this process would end the test run)
    threads = torch.get_num_threads()
    out = run_cells(_cell, [Cell(f"c{x}", (x,)) for x in xs], save=saved.__setitem__, fail=failed.__setitem__,
                    workers=workers, retries=1, progress=events.append, cpus=1)
    ok = [x for x in xs if x not in (1, 2)]
    assert saved == {f"c{x}": (x, 1) for x in ok}  # every cell ran with the asked-for thread count
    assert failed == out and set(failed) == {f"c{x}" for x in xs if x in (1, 2)}
    assert failed["c1"] == "ValueError: bad cell"
    if workers == 2:  # the crash took the cells in flight with it; only the crashing one is failed
        assert "died" in failed["c2"] and "tried 2 times" in failed["c2"]
    assert sorted(e["id"] for e in events) == sorted(f"c{x}" for x in xs)
    assert torch.get_num_threads() == threads  # in-process runs give the caller's settings back


def test_staging_copies_relative_files_and_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.toml").write_text("x = 1")
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "b.csv").write_text("1,2")
    into = tmp_path / "stage"
    stage_files(["specs/a.toml", "data", str(tmp_path / "specs" / "a.toml")], into)
    assert (into / "specs" / "a.toml").read_text() == "x = 1"
    assert (into / "data" / "sub" / "b.csv").read_text() == "1,2"
    assert sorted(p.name for p in into.iterdir()) == ["data", "specs"]  # the absolute path stays where it is
    with pytest.raises(QflError, match="leaves the current folder"):
        stage_files(["../elsewhere.toml"], into)
    with pytest.raises(QflError, match="file not found"):
        stage_files(["specs/missing.toml"], into)


def test_unreachable_or_malformed_ray_address_is_refused_at_once():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(QflError, match="cannot reach the Ray cluster"):
        check_cluster(f"127.0.0.1:{port}")
    with pytest.raises(QflError, match="HOST:PORT"):
        check_cluster("head-node")
