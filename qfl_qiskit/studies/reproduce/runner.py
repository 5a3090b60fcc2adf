"""Run a reproduction experiment: its cells through the sweep executor, resumed per cell, then one record with
provenance, a summary, the claim's verdict and plots under ``<results>/reproduce/<name>/``.

An experiment is a module with ``NAME``, ``CLAIM`` (the paper's statement), ``settings(quick)`` (JSON-ready
sizes), ``plan(settings, seeds)`` (cells: JSON-ready dicts with an ``id``), a module-level
``run_cell(settings_json, cell)`` (in a worker), ``summarize(settings, cells)``, ``verdict(summary)`` and
``describe(settings)`` (the setting in one line), and optionally ``PLAN_KEYS`` (settings that only select cells);
its
plots are rendered from the record by :mod:`qfl_qiskit.results.reproduce_plots`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from qfl_qiskit.atomic import atomic_write_bytes, atomic_write_json
from qfl_qiskit.errors import QflError, SpecError


def _check_data_path(experiment: ModuleType, path: str | Path) -> str:
    """The absolute path of an experiment's ``--data-path``, refused (one line) where it means nothing or is absent."""
    if not hasattr(experiment, "DATA_PATH"):
        from qfl_qiskit.studies.reproduce import EXPERIMENTS

        takers = [k for k, m in EXPERIMENTS.items() if hasattr(m, "DATA_PATH")]
        raise SpecError(f"{experiment.NAME} takes no --data-path (experiments that do: {', '.join(takers)})")
    p = Path(path).expanduser()
    if not p.exists():
        raise SpecError(f"--data-path {path} does not exist; {experiment.NAME} wants: {experiment.DATA_PATH}")
    if hasattr(experiment, "check_data_path"):
        experiment.check_data_path(p)  # before any cell: a wrong folder is one line, not every cell failing
    return str(p.resolve())


def fingerprint(name: str, settings: dict[str, Any], cell: dict[str, Any], plan_keys: Sequence[str] = ()) -> str:
    """What a cell's result depends on: the experiment, its settings and the cell's own values. The seeds and the
    ``plan_keys`` (settings that only choose which cells exist: a grid's axes, the baselines listed) are left out,
    so that a run with more seeds or a larger grid resumes the cells it shares with an earlier one."""
    kept = {k: v for k, v in settings.items() if k != "seeds" and k not in plan_keys}
    text = json.dumps({"experiment": name, "settings": kept,
                       "cell": {k: v for k, v in cell.items() if k != "fingerprint"}}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_experiment(experiment: ModuleType, *, out_dir: Path, quick: bool, seeds: Sequence[int] | None = None,
                   resume: bool = False, workers: int = 1, ray_address: str | None = None,
                   data_path: str | Path | None = None,
                   progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) one experiment into ``out_dir``; returns its record.

    ``data_path`` (only for experiments with a ``DATA_PATH`` description) is a data set the user downloaded; it
    is passed to ``settings(quick, data_path)`` and its files' provenance goes into the record.

    Raises:
        SpecError: ``data_path`` given to an experiment that takes none, or not an existing folder or file.
        QflError: ``out_dir`` holds cells of other settings (without ``resume`` they are discarded instead).
        CellsFailed: Some cells failed; the finished ones are kept and ``--resume`` computes the rest.
    """
    from qfl_qiskit.results import make_record, save_record
    from qfl_qiskit.results.reproduce_plots import render
    from qfl_qiskit.studies.executor import Cell, CellsFailed, check_cluster, run_cells

    notify = progress or (lambda event: None)
    started = time.perf_counter()
    data: dict[str, Any] | None = None
    if data_path is not None:
        data_path = _check_data_path(experiment, data_path)
        from qfl_qiskit.data.files import data_files

        data = {"files": data_files({"path": data_path})}
    check_cluster(ray_address)
    settings = experiment.settings(quick, data_path) if data_path is not None else experiment.settings(quick)
    seed_list = list(seeds) if seeds is not None else list(settings["seeds"])
    settings = {**settings, "seeds": seed_list}
    cells = experiment.plan(settings, seed_list)
    for c in cells:
        c["fingerprint"] = fingerprint(experiment.NAME, settings, c, getattr(experiment, "PLAN_KEYS", ()))
    cells_dir = out_dir / "cells"
    done: dict[str, dict[str, Any]] = {}
    for c in cells:
        path = cells_dir / f"{c['id']}.json"
        if not path.exists():
            continue
        if not resume:
            path.unlink()
            continue
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            saved = None  # a damaged cell is computed again
        if isinstance(saved, dict) and saved.get("fingerprint") == c["fingerprint"] and "result" in saved:
            done[c["id"]] = saved
        elif saved is not None:
            raise QflError(f"{out_dir} holds cells of other settings ({c['id']}); run without --resume to start "
                           "over, or use another --results-dir")
    todo = [c for c in cells if c["id"] not in done]
    cells_dir.mkdir(parents=True, exist_ok=True)
    notify({"event": "start", "total": len(cells), "done": len(done)})
    failed: dict[str, str] = {}

    def save(cid: str, result: dict[str, Any]) -> None:
        atomic_write_json(cells_dir / f"{cid}.json", result)

    run_cells(experiment.run_cell, [Cell(c["id"], (c,)) for c in todo], shared=(json.dumps(settings),),
              save=save, fail=failed.__setitem__, workers=workers, ray_address=ray_address, progress=notify)
    if failed:
        first = next(iter(failed))
        raise CellsFailed(f"{len(failed)} of {len(cells)} cells failed (first: {first}: {failed[first]}); run "
                          "again with --resume to compute only those")
    results = [json.loads((cells_dir / f"{c['id']}.json").read_text(encoding="utf-8")) for c in cells]
    summary = experiment.summarize(settings, results)
    record = make_record(f"reproduce_{experiment.NAME}", specs={"settings": settings, "quick": quick},
                         seeds={"seeds": seed_list},
                         payload={"experiment": experiment.NAME, "claim": experiment.CLAIM,
                                  "setting": experiment.describe(settings), "cells": results, "summary": summary,
                                  "verdict": experiment.verdict(summary),
                                  "run": {"wall_seconds": time.perf_counter() - started, "cells": len(cells),
                                          "resumed_cells": len(done), "workers": workers,
                                          "ray_address": ray_address}}, data=data)
    pngs = render(record)  # every plot is rendered before the first file is written
    save_record(record, out_dir / "record.json")
    for name, data in pngs.items():
        atomic_write_bytes(out_dir / f"{name}.png", data)
    return record


def claims_table(results_dir: Path) -> list[dict[str, Any]]:
    """One row per experiment with a record under ``results_dir/reproduce/``: the paper's claim, the setting,
    the verdict and what was measured, the plots and the run's wall time (None for experiments not run yet)."""
    from qfl_qiskit.studies.reproduce import EXPERIMENTS

    rows = []
    for name in EXPERIMENTS:
        folder = results_dir / "reproduce" / name
        try:
            record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
            payload = record["payload"]
        except (OSError, ValueError, KeyError, TypeError):
            rows.append({"name": name, "record": None})
            continue
        run = payload.get("run") or {}
        rows.append({"name": name, "record": str(folder / "record.json"), "claim": payload["claim"],
                     "setting": payload.get("setting", ""), "verdict": payload["verdict"]["verdict"],
                     "measured": payload["verdict"]["why"], "quick": bool(record["specs"].get("quick")),
                     "plots": sorted(str(p) for p in folder.glob("*.png")),
                     "wall_seconds": run.get("wall_seconds"), "resumed_cells": run.get("resumed_cells"),
                     "time": record.get("created")})
    return rows
