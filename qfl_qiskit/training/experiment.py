"""Run a training spec: load and split the data once, train every model on it, write records, plots, weights.

Layout of a run folder ``<results>/<spec.name>/``: ``<label>/checkpoint.pt`` (every epoch, for ``--resume``),
``<label>/model.pt`` (best weights + what is needed to rebuild the model), ``<label>/record.json`` (spec, seeds,
versions, per-epoch metrics, parameter counts, test metrics, wall time), ``<label>/learning_curve.png``, and
``comparison.json`` over all models of the spec, with ``comparison.png`` (metrics and parameter counts per model).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qfl_qiskit.atomic import atomic_write_bytes
from qfl_qiskit.data import MultimodalDataset, Standardizer, load_dataset, stratified_split, to_tensors
from qfl_qiskit.data.files import data_files
from qfl_qiskit.data.tensors import TensorData
from qfl_qiskit.errors import DataError, QflError, SpecError
from qfl_qiskit.models import build_model
from qfl_qiskit.models.losses import make_loss
from qfl_qiskit.results.records import make_record, save_record
from qfl_qiskit.specs.train import ExecutionSpec, TrainSpec
from qfl_qiskit.training.loop import Progress, evaluate, fit


@dataclass(frozen=True)
class Splits:
    """The data of a run: train / val / test tensors and facts about the data set."""

    train: TensorData
    val: TensorData
    test: TensorData
    dims: tuple[int, ...]
    num_classes: int
    names: tuple[str, ...]
    sizes: dict[str, int]
    files: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # data_files: path, sha256, bytes, shapes
    fixed_split: bool = False  # the file's own train/val/test split was used

    def provenance(self) -> dict[str, Any]:
        """What a record stores about the data: its files (sha256, size, shapes) and the shapes as loaded."""
        return {"files": self.files, "samples": dict(self.sizes), "modalities": dict(zip(self.names, self.dims)),
                "classes": self.num_classes, "fixed_split": self.fixed_split}


def drop_modalities(ds: MultimodalDataset, rate: float, *, seed: int) -> MultimodalDataset:
    """Mark each modality of each sample absent with probability ``rate`` (seeded), keeping at least one per sample.

    Args:
        ds: The data set.
        rate: Drop probability in [0, 1).
        seed: Seed of the mask.

    Returns:
        The data set with the new presence mask (combined with the existing one).
    """
    if rate <= 0:
        return ds
    rng = np.random.default_rng(seed)
    keep = rng.random(ds.presence.shape) >= rate
    empty = ~keep.any(axis=1)
    keep[empty, rng.integers(0, ds.num_modalities, size=int(empty.sum()))] = True
    presence = ds.presence & keep
    lost = ~presence.any(axis=1)  # a sample whose only kept modality was already absent: restore the original
    presence[lost] = ds.presence[lost]
    return ds.with_presence(presence)


def split_dataset(ds: MultimodalDataset, data: Any, *, seed: int
                  ) -> tuple[MultimodalDataset, MultimodalDataset, MultimodalDataset]:
    """Train, validation and test parts: the data set's own fixed split when it has one (``split`` in the file),
    else stratified by class with the spec's fractions and ``seed``."""
    if ds.split is not None:
        parts = tuple(ds.subset(ds.split == code) for code in range(3))
        empty = [name for name, part in zip(("train", "val", "test"), parts) if len(part) == 0]
        if empty:
            raise DataError(f"the data's fixed split has no {empty[0]} samples; mark some rows {empty[0]!r}")
        return parts
    val, test = data.val_fraction, data.test_fraction
    return stratified_split(ds, fractions=(1 - val - test, val, test), seed=seed)


def prepare_data(spec: TrainSpec) -> Splits:
    """Load, mask, split (the file's fixed split, or stratified and seeded) and standardise (training statistics
    only) the spec's data set."""
    ds = load_dataset(spec.data.name, **spec.data.options)
    ds = drop_modalities(ds, spec.data.missing_rate, seed=spec.seed)
    train_ds, val_ds, test_ds = split_dataset(ds, spec.data, seed=spec.seed)
    if spec.data.standardize:
        scaler = Standardizer().fit(train_ds)
        train_ds, val_ds, test_ds = (scaler.transform(d) for d in (train_ds, val_ds, test_ds))
    return Splits(to_tensors(train_ds), to_tensors(val_ds), to_tensors(test_ds), ds.dims, int(ds.num_classes),
                  ds.names, {"train": len(train_ds), "val": len(val_ds), "test": len(test_ds)},
                  data_files(spec.data.options), ds.split is not None)


def make_estimator(execution: ExecutionSpec, *, seed: int) -> Any:
    """The estimator an execution spec asks for."""
    if execution.estimator == "exact":
        from qfl_qiskit.execution import ExactEstimator

        return ExactEstimator(precision=execution.precision)
    from qfl_qiskit.execution import AerEstimator
    from qfl_qiskit.specs.noise import load_noise_spec

    noise = load_noise_spec(execution.noise) if execution.noise else None
    return AerEstimator(noise=noise, shots=execution.shots, seed=seed)


def save_model(path: Path, model: torch.nn.Module, *, spec: TrainSpec, label: str, splits: Splits) -> Path:
    """Write the model's weights with everything needed to rebuild it (atomic)."""
    model_spec = next(m for m in spec.models if m.display == label)
    buf = io.BytesIO()
    torch.save({"train_spec": spec.model_dump(mode="json"), "label": label,
                "model_spec": model_spec.model_dump(mode="json"), "dims": list(splits.dims),
                "num_classes": splits.num_classes, "data": splits.provenance(), "state": model.state_dict()}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _rows(spec: TrainSpec, splits: Any) -> int:
    """Rows the simulator evaluates at once: a training batch, or an evaluation chunk (256) of the largest split."""
    largest = max(splits.sizes.values())
    return max(min(spec.optim.batch_size, splits.sizes["train"]), min(256, largest))


def check_fits(model_spec: Any, dims: Any, *, rows: int = 1) -> None:
    """Refuse a model that cannot be built for these modalities (TFN's tensor, the quantum circuit's size, the
    exact simulator's batched state for ``rows`` rows at once, a classical model's parameter count).

    Raises:
        SpecError: The model does not fit (one line naming the model and the limit).
    """
    from qfl_qiskit import limits

    m = len(dims)
    if model_spec.name == "tfn" and (model_spec.features + 1) ** m > model_spec.max_tensor:
        raise SpecError(f"TFN with {m} modalities of {model_spec.features} features needs a "
                        f"{(model_spec.features + 1) ** m}-dimensional tensor (max_tensor "
                        f"{model_spec.max_tensor}); drop TFN from the spec or use LMF")
    why = None
    if model_spec.name == "qfl":
        why = limits.check_qfl(m, model_spec.features, model_spec.degree, model_spec.layers)
    elif model_spec.name == "mma":
        why = limits.check_mma(m, model_spec.features, limits.mma_layers(
            model_spec.encoding_layers, model_spec.trainable_layers, model_spec.fusion_layers))
    if why is None and model_spec.name in ("qfl", "mma"):
        qubits = limits.qfl_qubits(m, model_spec.features) if model_spec.name == "qfl" else m * model_spec.features
        why = limits.check_batch_state(qubits, rows)
    if why is None and model_spec.name not in ("qfl", "mma"):
        fields = {k: getattr(model_spec, k) for k in ("out", "rank", "factor", "hidden", "layers", "max_tensor")
                  if hasattr(model_spec, k)}
        count = limits.classical_parameters(model_spec.name, m, model_spec.features, **fields)
        count += sum(dims) * model_spec.encoder_hidden + model_spec.encoder_hidden * model_spec.features * m
        if count > limits.MAX_MODEL_PARAMETERS:
            why = (f"about {count:,} parameters exceed the limit of {limits.MAX_MODEL_PARAMETERS:,}; use smaller "
                   "features, rank, factor, out or hidden sizes")
    if why:
        raise SpecError(f"model '{model_spec.display}' on {m} modalities: {why}")


def train_models(spec: TrainSpec, *, out_dir: Path, resume: bool = False, only: list[str] | None = None,
                 progress: Progress | None = None, splits: Splits | None = None, hooks: Any = None,
                 dry_run: bool = False) -> dict[str, Any]:
    """Train every model of ``spec`` (or those labelled in ``only``) on one split; write the run folder.

    Args:
        spec: The training spec.
        out_dir: Parent folder; the run goes to ``out_dir / spec.name``.
        resume: Continue each model from its checkpoint where one exists.
        only: Labels of the models to train (None: all).
        progress: Callback for progress events; each event also carries ``model`` (the label).
        splits: Prepared data (default: :func:`prepare_data`).
        hooks: :class:`~qfl_qiskit.training.qpu.Hooks` of the Runtime path (tests).
        dry_run: Runtime specs: estimate each model's whole run and return (nothing submitted or written).

    Returns:
        The comparison record (also written as ``comparison.json``).

    Raises:
        SpecError: ``only`` names a model the spec does not have.
        DataError: The data cannot be loaded or split.
    """
    labels = [m.display for m in spec.models]
    unknown = [x for x in (only or []) if x not in labels]
    if unknown:
        raise SpecError(f"no model labelled {unknown[0]!r} in the spec; labels: {', '.join(labels)}")
    splits = splits or prepare_data(spec)
    for model_spec in spec.models:  # every model is checked against the data before the first one trains
        if not only or model_spec.display in only:
            check_fits(model_spec, splits.dims, rows=_rows(spec, splits))
            if spec.execution.estimator == "runtime":
                from qfl_qiskit.training.qpu_setup import check_device_model

                check_device_model(model_spec)
    run_dir = out_dir / spec.name
    rows = []
    for model_spec in spec.models:
        if only and model_spec.display not in only:
            continue
        if spec.execution.estimator == "runtime":
            from qfl_qiskit.training.qpu import train_on_device

            rows.append(train_on_device(spec, model_spec, splits, run_dir / model_spec.display, resume=resume,
                                        progress=progress, hooks=hooks, dry_run=dry_run))
            continue
        if dry_run:
            raise SpecError("--dry-run estimates device runs; this spec trains with estimator "
                            f"'{spec.execution.estimator}', which costs no QPU time")
        rows.append(_train_one(spec, model_spec, splits, run_dir / model_spec.display, resume=resume,
                               progress=progress))
    if dry_run:
        return {"dry_run": True, "payload": {"models": rows}}
    return write_comparison(spec, splits, rows, run_dir)


def write_comparison(spec: TrainSpec, splits: Splits, rows: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """The run's ``comparison.json`` over its models' rows (and ``comparison.png`` for two or more); returns it."""
    record = make_record("comparison", specs={"train": spec}, seeds={"seed": spec.seed},
                         payload={"data": {"names": list(splits.names), "dims": list(splits.dims),
                                           "num_classes": splits.num_classes, "sizes": splits.sizes},
                                  "models": rows}, data=splits.provenance())
    save_record(record, run_dir / "comparison.json")
    if len(rows) > 1:
        from qfl_qiskit.results.plots import render_comparison

        atomic_write_bytes(run_dir / "comparison.png", render_comparison([record], title=spec.name))
    return record


def _data_digest(splits: Splits) -> str:
    """The data files' hashes, in the checkpoint fingerprint: --resume after the file changed is refused instead
    of scoring old weights on new data (nothing for the built-in data sets, so older checkpoints still resume)."""
    hashes = [f.get("sha256", "") for f in splits.files if f.get("sha256")]
    return f"/data:{','.join(h[:16] for h in hashes)}" if hashes else ""


def _train_one(spec: TrainSpec, model_spec: Any, splits: Splits, folder: Path, *, resume: bool,
               progress: Progress | None, checkpoint: Path | None = None) -> dict[str, Any]:
    """Train one model into ``folder`` (``model.pt``, ``record.json``, ``learning_curve.png``; the checkpoint
    there too unless ``checkpoint`` names another file); returns its row of the comparison."""
    from qfl_qiskit.results.plots import plot_learning_curve

    label = model_spec.display
    quantum = model_spec.name in ("qfl", "mma")
    estimator = make_estimator(spec.execution, seed=spec.seed) if quantum else None
    model = build_model(model_spec, splits.dims, splits.num_classes, estimator=estimator,
                        gradient=spec.execution.gradient, seed=spec.seed)
    loss_fn = make_loss(spec.loss.name, gamma=spec.loss.gamma, alpha=spec.loss.alpha)
    o = spec.optim
    notify = (lambda event: progress({**event, "model": label})) if progress else None
    result = fit(model, splits.train, splits.val, num_classes=splits.num_classes, loss_fn=loss_fn, lr=o.lr,
                 weight_decay=o.weight_decay, epochs=o.epochs, batch_size=o.batch_size, patience=o.patience,
                 monitor=o.monitor, seed=spec.seed, checkpoint=checkpoint or folder / "checkpoint.pt", resume=resume,
                 fingerprint=f"{spec.spec_id}/{label}{_data_digest(splits)}", progress=notify)
    test = evaluate(model, splits.test, num_classes=splits.num_classes, loss_fn=loss_fn)
    save_model(folder / "model.pt", model, spec=spec, label=label, splits=splits)
    row = {"label": label, "model": model_spec.name, "quantum": quantum,
           "fusion_parameters": model.fusion_parameters, "total_parameters": model.total_parameters,
           "test": test, "best_epoch": result.best_epoch, "epochs_run": len(result.history),
           "stopped_early": result.stopped_early, "train_seconds": result.wall_time,
           "resumed_from": result.resumed_from}
    if quantum:
        row["circuit"] = {"num_qubits": model.layers()[0].circuit.num_qubits,
                          "spec": model.spec.model_dump(mode="json"), "spec_id": model.spec.spec_id}
    record = make_record("training_run", specs={"train": spec, "model": model_spec},
                         seeds={"seed": spec.seed},
                         payload={**row, "history": result.history,
                                  "estimator": estimator.describe() if estimator is not None else None},
                         data=splits.provenance())
    save_record(record, folder / "record.json")
    plot_learning_curve(record, folder / "learning_curve.png")
    return row


def load_model(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a trained model from ``model.pt`` (exact estimator); returns the model and the saved metadata.

    Raises:
        DataError: The file is missing or is not a model file of this toolkit, or a data file the model was
            trained on has changed since (its sha256) or is gone.
    """
    from qfl_qiskit.specs.base import validate
    from qfl_qiskit.specs.train import TrainSpec

    if not path.is_file():
        raise DataError(f"model file not found: {path}; give a run folder written by 'qfl train'")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        spec = validate(TrainSpec, saved["train_spec"], source=str(path))
        model_spec = next(m for m in spec.models if m.display == saved["label"])
    except QflError:
        raise
    except Exception as exc:  # noqa: BLE001  (torch/pickle raise many kinds for a file that is not a model)
        reason = " ".join(str(exc).split())[:160]
        raise DataError(f"{path} is not a model file written by 'qfl train' ({type(exc).__name__}: {reason}); "
                        "give a run folder results/<run>/<label> or its model.pt") from None
    from qfl_qiskit.data.files import check_data_files

    check_data_files((saved.get("data") or {}).get("files", []), what=f"the model in {path}")
    model = build_model(model_spec, saved["dims"], saved["num_classes"], seed=spec.seed)
    try:
        model.load_state_dict(saved["state"])
    except (KeyError, RuntimeError) as exc:
        raise DataError(f"{path}: the saved weights do not fit the model its spec describes ({type(exc).__name__}); "
                        "train it again") from None
    return model, {**saved, "spec": spec, "model_spec_obj": model_spec}
