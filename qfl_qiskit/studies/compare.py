"""``qfl compare --seeds``: every (seed, model) pair is a cell of the sweep executor (local processes or a Ray
cluster). A worker trains its model in a scratch folder and returns the files; the driver writes them into the
usual run folder ``<results>/<name>_seed<seed>/<label>/`` (``model.pt``, ``learning_curve.png``, then
``record.json``, each atomically), and each seed's ``comparison.json`` once its models are all there.

With ``resume``, a model whose ``record.json`` was written for the same spec is not trained again, whichever
executor trained it; on local processes an unfinished model also continues from its checkpoint in the run folder.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qfl_qiskit.atomic import atomic_write_bytes
from qfl_qiskit.specs.train import TrainSpec

#: What a worker sends back of a trained model's folder; ``record.json`` is written last (it marks the cell done).
CELL_FILES = ("model.pt", "learning_curve.png", "record.json")


def seed_spec(spec: TrainSpec, seed: int) -> TrainSpec:
    """The spec of one seed's run: that seed, and the run named ``<name>_seed<seed>``."""
    return spec.model_copy(update={"seed": seed, "name": f"{spec.name}_seed{seed}"})


def train_cell(spec_json: str, label: str, checkpoint_dir: str | None, resume: bool) -> dict[str, Any]:
    """Train one model of one seed's spec (in a worker); returns the files of its run folder as bytes."""
    from qfl_qiskit.training import prepare_data
    from qfl_qiskit.training.experiment import _train_one

    spec = TrainSpec.model_validate_json(spec_json)
    splits = prepare_data(spec)
    model_spec = next(m for m in spec.models if m.display == label)
    with tempfile.TemporaryDirectory(prefix="qfl-cell-") as tmp:
        folder = Path(tmp)
        checkpoint = Path(checkpoint_dir) / "checkpoint.pt" if checkpoint_dir else None
        _train_one(spec, model_spec, splits, folder, resume=resume, progress=None, checkpoint=checkpoint)
        return {"files": {name: (folder / name).read_bytes() for name in CELL_FILES}}


def _finished(folder: Path, spec: TrainSpec) -> bool:
    """Whether ``folder`` holds a trained model of exactly this spec (its ``record.json`` and ``model.pt``)."""
    try:
        record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
        return record["specs"]["train"]["spec_id"] == spec.spec_id and (folder / "model.pt").is_file()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def spec_files(spec: TrainSpec) -> list[str]:
    """Files a training spec's runs read: its data file or folder and its noise spec."""
    files = [spec.data.options["path"]] if isinstance(spec.data.options.get("path"), str) else []
    return files + ([spec.execution.noise] if spec.execution.noise else [])


def run_seeds(spec: TrainSpec, seeds: Sequence[int], *, results_dir: Path, resume: bool = False,
              workers: int = 1, ray_address: str | None = None,
              progress: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Train every model of ``spec`` once per seed, as cells; returns each seed's comparison record.

    Raises:
        DataError: A seed's data cannot be loaded or split (checked for every seed before any training).
        SpecError: A model does not fit the data.
        CellsFailed: Some models failed; the finished ones are kept and a rerun with ``resume`` trains the rest.
    """
    from qfl_qiskit.studies.executor import Cell, CellsFailed, check_cluster, run_cells
    from qfl_qiskit.training import prepare_data
    from qfl_qiskit.training.experiment import _rows, check_fits, write_comparison

    notify = progress or (lambda event: None)
    check_cluster(ray_address)
    specs = {s: seed_spec(spec, s) for s in seeds}
    splits = {s: prepare_data(sp) for s, sp in specs.items()}
    for model_spec in spec.models:  # every model is checked against the data before the first one trains
        for s in seeds:
            check_fits(model_spec, splits[s].dims, rows=_rows(specs[s], splits[s]))
    folders = {(s, m.display): results_dir / specs[s].name / m.display for s in seeds for m in spec.models}
    todo = [Cell(f"seed{s}/{label}", (specs[s].model_dump_json(), label,
                                      None if ray_address else str(folder), resume))
            for (s, label), folder in folders.items() if not (resume and _finished(folder, specs[s]))]
    notify({"event": "start", "total": len(folders), "done": len(folders) - len(todo)})
    by_id = {f"seed{s}/{label}": folder for (s, label), folder in folders.items()}
    failed: dict[str, str] = {}

    def save(cid: str, result: dict[str, Any]) -> None:
        folder = by_id[cid]
        for name in CELL_FILES:
            atomic_write_bytes(folder / name, result["files"][name])

    run_cells(train_cell, todo, save=save, fail=failed.__setitem__, workers=workers, ray_address=ray_address,
              files=spec_files(spec), progress=notify)
    records = []
    for s in seeds:
        if all(f"seed{s}/{m.display}" not in failed for m in spec.models):
            rows = [_row(folders[(s, m.display)]) for m in spec.models]
            records.append(write_comparison(specs[s], splits[s], rows, results_dir / specs[s].name))
    if failed:
        first = next(iter(failed))
        raise CellsFailed(f"{len(failed)} of {len(folders)} models failed (first: {first}: {failed[first]}); the "
                          "finished ones are kept: run the same command again with --resume to train the rest")
    return records


def _row(folder: Path) -> dict[str, Any]:
    """A model's row of its run's comparison, from its ``record.json`` (the payload less the history)."""
    payload = json.loads((folder / "record.json").read_text(encoding="utf-8"))["payload"]
    return {k: v for k, v in payload.items() if k not in ("history", "estimator")}
