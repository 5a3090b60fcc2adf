"""One cell executor for every sweep: a local process pool by default, Ray tasks on a cluster given an address.

A sweep (noise study, ``qfl compare --seeds``, a reproduction) is a list of independent :class:`Cell`; the executor
runs ``fn(*shared, *cell.args)`` for each and hands each result to the sweep's ``save`` in the driver process as it
arrives, so every record is written by the driver, atomically, whichever machine computed it, and resume (the sweep
skips cells it finds saved) does not care which executor ran them.

- Threads: every cell runs with ``cpus`` threads (``OMP_NUM_THREADS`` and torch's), on either executor, so a cell's
  numbers do not depend on where it ran (reductions over threads are not bit-identical across thread counts).
- Failures: an exception inside a cell, or a worker lost ``retries`` + 1 times (Ray retries a task whose worker or
  node died; the pool is rebuilt after a worker crash), records the cell as failed with its reason through
  ``fail``; the other cells go on. Nothing here raises for a failed cell: the sweep decides (see
  :class:`CellsFailed`).
- Ctrl-C: no new cell starts; the finished cells are already saved; queued and running tasks are cancelled.
- Data: ``shared`` values are put in Ray's object store once; ``files`` (paths relative to the current folder:
  spec and data files the cells read) travel in a Ray ``working_dir`` runtime environment staged with just those
  files, so worker nodes need only the package installed. Absolute paths must exist on every node.

Nothing outside this module imports ``ray``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, wait, FIRST_COMPLETED
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qfl_qiskit.errors import QflError

#: Ray's default for lost tasks is 3 retries; a cell is minutes of work, so two retries then "failed" is enough.
DEFAULT_RETRIES = 2
#: Ray uploads a working_dir to its object store (its own limit is 500 MiB); data folders above this stay shared.
MAX_SHIPPED_BYTES = 200 * 2**20


@dataclass(frozen=True)
class Cell:
    """One unit of a sweep: ``id`` names its record; ``args`` (picklable) follow the sweep's shared arguments."""

    id: str
    args: tuple[Any, ...]


class CellsFailed(QflError):
    """Some cells failed after their retries; the finished ones are saved and a rerun retries the failed ones."""

    exit_code = 1


Progress = Callable[[dict[str, Any]], None]


def run_cells(fn: Callable[..., Any], cells: Sequence[Cell], *, save: Callable[[str, Any], None],
              fail: Callable[[str, str], None], shared: Sequence[Any] = (), workers: int = 1,
              ray_address: str | None = None, cpus: int = 1, retries: int = DEFAULT_RETRIES,
              files: Sequence[str | Path] = (), progress: Progress | None = None) -> dict[str, str]:
    """Run ``fn(*shared, *cell.args)`` for every cell; ``save(id, result)`` / ``fail(id, reason)`` in this process.

    Args:
        fn: A module-level function (workers import it by name).
        cells: The cells to run (finished ones already left out by the sweep).
        save: Called in the driver with each result as it arrives.
        fail: Called in the driver with a failed cell's id and the reason (one line).
        shared: Arguments common to every cell (specs, bytes): sent once.
        workers: Local processes (1: in this process, one after another). Ignored with ``ray_address``.
        ray_address: A Ray cluster (``HOST:6379``, ``auto``, ``ray://HOST:10001``): one Ray task per cell.
        cpus: CPUs (threads) per cell.
        retries: Times a cell lost with its worker is run again before it is recorded as failed.
        files: Files the cells read, by the paths the sweep's specs name (shipped to Ray workers).
        progress: ``{"event": "cell", "id"}`` / ``{"event": "failed", "id", "reason"}`` per finished cell.

    Returns:
        The failed cells' reasons by id (empty when all finished).
    """
    notify = progress or (lambda event: None)
    failures: dict[str, str] = {}

    def on_result(cid: str, result: Any) -> None:
        save(cid, result)
        notify({"event": "cell", "id": cid})

    def on_failure(cid: str, reason: str) -> None:
        failures[cid] = reason
        fail(cid, reason)
        notify({"event": "failed", "id": cid, "reason": reason})

    if not cells:
        return failures
    if ray_address:
        _run_ray(fn, cells, shared, on_result, on_failure, address=ray_address, cpus=cpus, retries=retries,
                 files=files)
    elif workers > 1 and len(cells) > 1:
        _run_pool(fn, cells, shared, on_result, on_failure, workers=workers, cpus=cpus, retries=retries)
    else:
        import torch

        threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
        try:
            for cell in cells:
                try:
                    result = run_in_worker(fn, cpus, None, *shared, *cell.args)
                except Exception as exc:  # noqa: BLE001  (a cell's failure is recorded; the sweep goes on)
                    on_failure(cell.id, _reason(exc))
                else:
                    on_result(cell.id, result)
        finally:  # this process is the caller's: its thread settings are given back
            torch.set_num_threads(threads)
            if omp is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = omp
    return failures


def run_in_worker(fn: Callable[..., Any], cpus: int, version: str | None, *args: Any) -> Any:
    """Run one cell where it was scheduled: threads set to ``cpus``, the package version checked, warnings off."""
    import warnings

    from qfl_qiskit import __version__

    if version is not None and version != __version__:
        raise QflError(f"this worker has qfl-qiskit {__version__} but the driver {version}; install the same "
                       "version on every node")
    warnings.filterwarnings("ignore")
    os.environ["OMP_NUM_THREADS"] = str(cpus)
    import torch

    if torch.get_num_threads() != cpus:
        torch.set_num_threads(cpus)
    return fn(*args)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:400] if text else type(exc).__name__


def _pool_initializer(parent: int, cpus: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(cpus)  # before torch and Aer are imported in this fresh interpreter
    _exit_with_parent(parent)


def _run_pool(fn: Callable[..., Any], cells: Sequence[Cell], shared: Sequence[Any], on_result: Callable,
              on_failure: Callable, *, workers: int, cpus: int, retries: int) -> None:
    """Spawned processes (no forked torch / Aer thread state). A worker that dies breaks a ``ProcessPoolExecutor``
    and every cell in flight with it, whichever of them crashed; so each lost cell then runs alone in a fresh
    one-process pool, ``retries`` times at most, and only a cell that itself kills its worker is recorded failed."""
    lost = _pool_pass(fn, cells, shared, on_result, on_failure, workers=workers, cpus=cpus)
    for cell in lost:
        for _ in range(retries):
            if not _pool_pass(fn, [cell], shared, on_result, on_failure, workers=1, cpus=cpus):
                break
        else:
            on_failure(cell.id, f"its worker process died (killed, or out of memory); tried {retries + 1} times")


def _pool_pass(fn: Callable[..., Any], cells: Sequence[Cell], shared: Sequence[Any], on_result: Callable,
               on_failure: Callable, *, workers: int, cpus: int) -> list[Cell]:
    """Run ``cells`` in one pool; returns those lost with a worker that died."""
    import multiprocessing

    ex = ProcessPoolExecutor(max_workers=min(workers, len(cells)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_pool_initializer, initargs=(os.getpid(), cpus))
    lost: list[Cell] = []
    try:
        futures = {ex.submit(run_in_worker, fn, cpus, None, *shared, *c.args): c for c in cells}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                cell = futures[fut]
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    lost.append(cell)
                except Exception as exc:  # noqa: BLE001  (recorded; the other cells go on)
                    on_failure(cell.id, _reason(exc))
                else:
                    on_result(cell.id, result)
    finally:  # on Ctrl-C, drop the queued cells instead of computing them for nothing
        ex.shutdown(wait=True, cancel_futures=True)
    return lost


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the sweep's driver process dies (even by SIGKILL).

    Without it, workers of a killed driver wait on their task queue forever (seen: two 570 MB processes per
    killed study, holding the pool's 5 semaphores in /dev/shm). Linux delivers SIGKILL on the parent's death
    (``PR_SET_PDEATHSIG``); elsewhere a daemon thread notices the parent is gone within a second.
    """
    import sys
    import threading

    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the driver died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="qfl-parent-watch").start()


def import_ray() -> Any:
    """``ray``, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise QflError("--ray-address needs Ray: pip install 'qfl-qiskit[cluster]' (or ray) on the driver and "
                       "every node") from None
    return ray


def stage_files(files: Sequence[str | Path], into: Path) -> None:
    """Copy the files the cells read into ``into`` at their paths relative to the current folder (the Ray
    ``working_dir`` each worker starts in). Absolute paths are left out: they must exist on every node."""
    for name in dict.fromkeys(str(f) for f in files):
        path = Path(name)
        if path.is_absolute():
            continue
        if ".." in path.parts:
            raise QflError(f"{name}: a path that leaves the current folder cannot be shipped to Ray workers; run "
                           "from a folder that contains it, or give it as an absolute path on a shared filesystem")
        target = into / path
        if path.is_dir():  # a data folder (PTB-XL, CMU-MOSEI): shipped when small, else shared storage
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            if size > MAX_SHIPPED_BYTES:
                raise QflError(f"{name}: {size / 2**20:.0f} MiB is too large to ship to Ray workers (limit "
                               f"{MAX_SHIPPED_BYTES // 2**20} MiB); put it on a filesystem every node mounts and "
                               "give its absolute path")
            shutil.copytree(path, target, dirs_exist_ok=True)
            continue
        if not path.is_file():
            raise QflError(f"{name}: file not found; check the path (relative to the current folder)")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def check_cluster(address: str | None, *, timeout: float = 5.0) -> None:
    """Refuse at once (before any work) a Ray address whose head does not answer: Ray itself keeps retrying an
    unreachable head for minutes (measured: 12 min before ``ray.init`` gave up on a closed port).

    Raises:
        QflError: Ray is not installed, or ``HOST:PORT`` (or ``ray://HOST:PORT``) refuses a TCP connection.
    """
    import socket

    if not address:
        return
    import_ray()
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise QflError(f"--ray-address {address!r}: give HOST:PORT (the head's GCS port, 6379 by default), "
                       "ray://HOST:10001 or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise QflError(f"cannot reach the Ray cluster at {address!r} ({exc.strerror or exc}); start one with "
                       "`ray start --head`, or drop --ray-address to use local processes") from None


def _connect(ray: Any, address: str, runtime_env: dict[str, Any] | None) -> None:
    try:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, logging_level="ERROR",
                 configure_logging=True)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise QflError(f"cannot reach the Ray cluster at {address!r} ({type(exc).__name__}: {first}); start one "
                       "with `ray start --head`, or drop --ray-address to use local processes") from None


def _run_ray(fn: Callable[..., Any], cells: Sequence[Cell], shared: Sequence[Any], on_result: Callable,
             on_failure: Callable, *, address: str, cpus: int, retries: int, files: Sequence[str | Path]) -> None:
    """One Ray task per cell with ``num_cpus=cpus``; lost tasks are retried by Ray ``retries`` times; results are
    fetched as they finish (``ray.wait``)."""
    ray = import_ray()
    from qfl_qiskit import __version__

    staged = Path(tempfile.mkdtemp(prefix="qfl-ray-"))
    try:
        stage_files(files, staged)
        runtime_env = {"working_dir": str(staged)} if any(staged.iterdir()) else None
        if ray.is_initialized():
            ray.shutdown()
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # no GPUs asked for: silence its notice
        _connect(ray, address, runtime_env)
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # uploaded by ray.init
    pending: dict[Any, Cell] = {}
    try:
        refs = [ray.put(value) for value in shared]
        task = ray.remote(num_cpus=cpus, max_retries=retries, retry_exceptions=False)(run_in_worker)
        for c in cells:
            pending[task.remote(fn, cpus, __version__, *refs, *c.args)] = c
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                cell = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the cell raised: its own error, not Ray's wrapper
                    cause = exc.cause if exc.cause is not None else exc
                    on_failure(cell.id, _reason(cause))
                except ray.exceptions.RayError as exc:  # worker or node lost after the retries, cancelled, ...
                    on_failure(cell.id, _reason(exc).split(". ")[0] + f" (after {retries} retries)")
                else:
                    on_result(cell.id, result)
    except KeyboardInterrupt:
        for ref in list(pending):
            ray.cancel(ref, force=True)
        raise
    finally:
        ray.shutdown()
