"""``qfl data``: write an example multimodal file, and show what a spec's ``[data]`` reads."""

from __future__ import annotations

import io
from pathlib import Path

import typer

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, compact_table, console, emit_json, json_output
from qfl_qiskit.errors import SpecError

data_app = typer.Typer(help="Your own data: example files and what a spec's \\[data] reads.", no_args_is_help=True)
app.add_typer(data_app, name="data")

EXAMPLES = ("breast-cancer",)


def breast_cancer_table():  # -> pandas.DataFrame
    """scikit-learn's copy of the Wisconsin diagnostic breast-cancer data (569 samples, 30 features) with the UCI
    column names: ``diagnosis`` (malignant / benign), then ``<feature>_mean``, ``<feature>_se`` (standard error)
    and ``<feature>_worst`` for the ten cell-nucleus features."""
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer(as_frame=True)
    frame = raw.frame.drop(columns="target")

    def uci(name: str) -> str:
        if name.startswith("mean "):
            return name[5:].replace(" ", "_") + "_mean"
        if name.startswith("worst "):
            return name[6:].replace(" ", "_") + "_worst"
        return name.replace(" error", "").replace(" ", "_") + "_se"

    frame.columns = [uci(c) for c in frame.columns]
    frame.insert(0, "diagnosis", [raw.target_names[t] for t in raw.target])
    return frame


def breast_cancer_views() -> dict:
    """The three views of :func:`breast_cancer_table` as float32 arrays (``mean``, ``se``, ``worst``, 569 x 10
    each) and ``y`` (the diagnosis strings): the arrays of the example .npz file."""
    import numpy as np

    table = breast_cancer_table()
    views = {v: table[[c for c in table.columns if c.endswith(f"_{v}")]].to_numpy(dtype=np.float32)
             for v in ("mean", "se", "worst")}
    return {**views, "y": table["diagnosis"].to_numpy(dtype=str)}


@data_app.command("example")
def example(
    name: str = typer.Argument(..., help=f"Example data set: {', '.join(EXAMPLES)} (569 samples, 3 views of 10)."),
    out: Path = typer.Argument(..., help="File to write: .csv (a table) or .npz (one array per modality)."),
) -> None:
    """Write an example multimodal data file to try the file loaders with (the README's own-data walk-through)."""
    from qfl_qiskit.atomic import atomic_write_bytes, atomic_write_text, require_writable_dir

    if name not in EXAMPLES:
        raise SpecError(f"unknown example '{name}'; choose one of {', '.join(EXAMPLES)}")
    if out.suffix not in (".csv", ".npz"):
        raise SpecError(f"{out}: give a .csv or .npz file name")
    if out.is_dir():
        raise SpecError(f"{out} is a folder; give a file name ending in .csv or .npz")
    require_writable_dir(out.parent if str(out.parent) else Path("."), what="the output folder")
    if out.suffix == ".csv":
        table = breast_cancer_table()
        atomic_write_text(out, table.to_csv(index=False))
        console.print(f"wrote {out}: {len(table)} rows, label column 'diagnosis', 30 feature columns "
                      "(*_mean, *_se, *_worst)")
        return
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **breast_cancer_views())
    atomic_write_bytes(out, buf.getvalue())
    console.print(f"wrote {out}: arrays mean, se, worst (569 x 10 each) and y (malignant / benign)")


@data_app.command("inspect")
def inspect(
    spec_file: Path = typer.Argument(..., help="A train or federated spec whose [data] to read."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Load a spec's data as training would and show its modalities, classes, split and file hashes."""
    from qfl_qiskit.data import load_dataset
    from qfl_qiskit.data.files import data_files
    from qfl_qiskit.specs.base import read_toml

    json_output(as_json)
    kind = read_toml(spec_file).get("kind", "train")
    if kind == "federated":
        from qfl_qiskit.specs.federated import load_federated_spec

        data = load_federated_spec(spec_file).data
    elif kind == "train":
        from qfl_qiskit.specs.train import load_train_spec

        data = load_train_spec(spec_file).data
    elif kind == "noise_study":  # the data of its model
        from qfl_qiskit.specs.study import load_study_spec
        from qfl_qiskit.specs.train import load_train_spec

        study = load_study_spec(spec_file)
        if study.model is None:
            raise SpecError(f"{spec_file}: this noise study has no [model], so no data; give a train spec")
        data = load_train_spec(study.model.train).data
    else:
        raise SpecError(f"{spec_file}: kind '{kind}' has no [data]; give a train, federated or noise-study spec")
    ds = load_dataset(data.name, **data.options)
    summary = {
        "loader": data.name, "samples": len(ds), "classes": int(ds.num_classes),
        "class_counts": ds.class_counts().tolist(),
        "modalities": [{"name": n, "features": d, "present": float(ds.presence[:, m].mean())}
                       for m, (n, d) in enumerate(zip(ds.names, ds.dims))],
        "fixed_split": None if ds.split is None else {p: int((ds.split == i).sum())
                                                      for i, p in enumerate(("train", "val", "test"))},
        "files": data_files(data.options),
    }
    console.print(f"{spec_file}: loader {data.name}, {len(ds)} samples, {ds.num_classes} classes "
                  f"(samples per class {summary['class_counts']})")
    table = compact_table("modalities")
    for col in ("modality", "features", "present"):
        table.add_column(col, justify="left" if col == "modality" else "right")
    for m in summary["modalities"]:
        table.add_row(m["name"], str(m["features"]), f"{m['present']:.1%}")
    console.print(table)
    if summary["fixed_split"]:
        console.print(f"fixed split from the file: {summary['fixed_split']}")
    for f in summary["files"]:
        console.print(f"file {f['path']}: {f.get('bytes', 0):,} bytes, sha256 {f.get('sha256', '-')}")
    if as_json:
        emit_json(summary)
