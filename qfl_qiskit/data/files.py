"""Your own multimodal data from files: NumPy ``.npz`` (one array per modality), CSV and Parquet tables (columns
grouped into modalities), and the provenance of every file a data spec reads (sha256, size, shapes).

Spec usage (paths are relative to the spec file)::

    [data]
    name = "npz"
    options = {path = "views.npz", modalities = ["mean", "worst"]}

    [data]
    name = "csv"
    options = {path = "table.csv", label = "diagnosis", modalities = {mean = "*_mean", error = ["radius_se"]}}

Every problem with a file (missing, unreadable, missing labels, ragged lengths, NaN or infinity, one class only, a
modality with no features, a cell that is not a number) is a :class:`~qfl_qiskit.errors.DataError` naming the
file and, for tables, the line and column.
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.errors import DataError

#: Arrays of an .npz file that are not modalities.
NPZ_RESERVED = ("y", "mask", "split")


def npz_views(path: str, *, modalities: list[str] | None = None) -> MultimodalDataset:
    """A data set from an ``.npz`` file: one 2-D array (samples x features) per modality and ``y``.

    Args:
        path: The file (``numpy.savez(path, mean=..., error=..., y=...)``).
        modalities: Which arrays are modalities, in this order; default every array but ``y``, ``mask`` and
            ``split``, in the file's order.

    The file may also hold ``mask`` (samples x modalities of the file's order, 1 = present; an absent modality's
    values are ignored, NaN allowed) and ``split`` (one of "train" / "val" / "test" per sample, fixing the split).
    Labels ``y`` may be integers or strings; classes are their sorted distinct values (0, 1, ...).

    Raises:
        DataError: The file cannot be read or its arrays do not form a data set.
    """
    file = _existing(path)
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(f"{file}: cannot read as .npz: it holds Python objects, not plain arrays (or is not an "
                            ".npz); save numeric arrays with numpy.savez") from None
        raise DataError(f"{file}: cannot read as .npz ({type(exc).__name__}: {_short(exc)})") from None
    except Exception as exc:  # zip and format errors all mean "not a readable .npz"
        raise DataError(f"{file}: cannot read as .npz ({type(exc).__name__}: {_short(exc)})") from None
    if "y" not in arrays:
        raise DataError(f"{file}: no array 'y' (the labels); save it with numpy.savez(..., y=labels)")
    in_file = [k for k in arrays if k not in NPZ_RESERVED]
    chosen = list(in_file) if modalities is None else list(modalities)
    unknown = [m for m in chosen if m not in in_file]
    if unknown or not chosen or len(set(chosen)) != len(chosen):
        raise DataError(f"{file}: modalities must be distinct names among its arrays {in_file}, got {chosen}")
    n = _labels_length(arrays["y"], file)
    mods = []
    for name in chosen:
        x = arrays[name]
        if x.ndim != 2 or x.shape[0] != n or x.shape[1] == 0:
            raise DataError(f"{file}: modality '{name}' has shape {x.shape}; expected ({n}, features >= 1) like y")
        if not np.issubdtype(x.dtype, np.number) or x.dtype == bool:
            raise DataError(f"{file}: modality '{name}' holds {x.dtype}, not numbers")
        mods.append(x)
    presence = None
    if "mask" in arrays:
        mask = arrays["mask"]
        if mask.shape != (n, len(in_file)) or not np.isin(mask, (0, 1)).all():
            raise DataError(f"{file}: mask must be 0/1 of shape ({n}, {len(in_file)}) (samples x the file's "
                            f"modalities {in_file}), got {mask.dtype} {mask.shape}")
        presence = mask[:, [in_file.index(m) for m in chosen]].astype(bool)
        none = np.flatnonzero(~presence.any(axis=1))
        if none.size:
            raise DataError(f"{file}: sample {none[0]} (0-based) has no modality present in mask; drop it or mark "
                            "one present")
    mods = [_finite(x, None if presence is None else presence[:, i], file, chosen[i]) for i, x in enumerate(mods)]
    labels, classes = _classes(arrays["y"], file)
    return _dataset(file, mods, labels, presence, chosen, classes, arrays.get("split"))


def csv_table(path: str, *, label: str, modalities: dict[str, list[str] | str],
              split: str | None = None) -> MultimodalDataset:
    """A data set from a CSV file with a header row: a label column and columns grouped into modalities.

    Args:
        path: The file.
        label: The label column (integers or strings; classes are the sorted distinct values).
        modalities: Modality name -> its columns, as a list of names or one glob pattern (``"*_se"``), in the
            table's column order for a pattern.
        split: Optional column of "train" / "val" / "test" fixing the split.

    A modality whose cells are all empty in a row is absent for that sample; a partly empty modality, an empty
    label or a cell that is not a number is an error naming the line and column.

    Raises:
        DataError: The file cannot be read or its columns do not form a data set.
    """
    file = _existing(path)
    import pandas as pd

    try:
        table = pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # parser, encoding and empty-file errors
        raise DataError(f"{file}: cannot read as CSV ({type(exc).__name__}: {_short(exc)})") from None
    return _from_table(file, table, label=label, modalities=modalities, split=split, first_line=2)


def parquet_table(path: str, *, label: str, modalities: dict[str, list[str] | str],
                  split: str | None = None) -> MultimodalDataset:
    """As :func:`csv_table`, from a Parquet file (pandas with pyarrow or fastparquet); null cells are empty."""
    file = _existing(path)
    import pandas as pd

    try:
        table = pd.read_parquet(file)
    except ImportError:
        raise DataError(f"{file}: reading Parquet needs pyarrow, which is not installed; pip install pyarrow") from None
    except Exception as exc:
        raise DataError(f"{file}: cannot read as Parquet ({type(exc).__name__}: {_short(exc)})") from None
    table = table.astype(object).where(table.notna(), "").map(_cell_text)
    return _from_table(file, table, label=label, modalities=modalities, split=split, first_line=1)


def _cell_text(value: Any) -> str:
    """A Parquet cell as the text a CSV would hold (floats exactly, nulls empty)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _from_table(file: Path, table: Any, *, label: str, modalities: dict[str, list[str] | str],
                split: str | None, first_line: int) -> MultimodalDataset:
    columns = [str(c) for c in table.columns]
    row_word = "line" if first_line == 2 else "row"
    if label not in columns:
        raise DataError(f"{file}: no label column '{label}'; columns: {_few(columns)}")
    if split is not None and split not in columns:
        raise DataError(f"{file}: no split column '{split}'; columns: {_few(columns)}")
    if not modalities:
        raise DataError(f"{file}: give modalities = {{name = [columns] or \"pattern\", ...}}")
    groups: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for name, cols in modalities.items():
        picked = fnmatch.filter(columns, cols) if isinstance(cols, str) else list(cols)
        missing = [c for c in picked if c not in columns]
        if missing:
            raise DataError(f"{file}: modality '{name}': no column {missing[0]!r}; columns: {_few(columns)}")
        if not picked:
            raise DataError(f"{file}: modality '{name}': pattern {cols!r} matches no column")
        for c in picked:
            if c in (label, split):
                raise DataError(f"{file}: modality '{name}' includes the {'label' if c == label else 'split'} "
                                f"column '{c}'")
            if c in owner:
                raise DataError(f"{file}: column '{c}' is in modalities '{owner[c]}' and '{name}'")
            owner[c] = name
        groups[name] = picked
    n = len(table)
    if n == 0:
        raise DataError(f"{file}: no data rows")
    labels_raw = table[label].to_numpy(dtype=str)
    empty = np.flatnonzero(labels_raw == "")
    if empty.size:
        raise DataError(f"{file}: {row_word} {empty[0] + first_line}, column '{label}': empty label")
    mods, presence = [], np.ones((n, len(groups)), dtype=bool)
    for m, (name, cols) in enumerate(groups.items()):
        cells = table[cols].to_numpy(dtype=str)
        blank = cells == ""
        partly = np.flatnonzero(blank.any(axis=1) & ~blank.all(axis=1))
        if partly.size:
            r = int(partly[0])
            col = cols[int(np.flatnonzero(blank[r])[0])]
            raise DataError(f"{file}: {row_word} {r + first_line}, column '{col}': empty cell in modality '{name}' "
                            "(a modality is either complete or all empty, meaning absent)")
        presence[:, m] = ~blank.all(axis=1)
        values = np.zeros(cells.shape, dtype=np.float64)
        for r, c in zip(*np.nonzero(~blank)):
            try:
                values[r, c] = float(cells[r, c])
            except ValueError:
                raise DataError(f"{file}: {row_word} {r + first_line}, column '{cols[c]}': "
                                f"{str(cells[r, c])[:40]!r} is not a number") from None
        bad = np.argwhere(~np.isfinite(values) & ~blank)
        if bad.size:
            r, c = (int(v) for v in bad[0])
            raise DataError(f"{file}: {row_word} {r + first_line}, column '{cols[c]}': "
                            f"{str(cells[r, c])!r} is not finite")
        mods.append(values)
    none = np.flatnonzero(~presence.any(axis=1))
    if none.size:
        raise DataError(f"{file}: {row_word} {none[0] + first_line}: every modality is empty")
    labels, classes = _classes(labels_raw, file)
    split_values = None if split is None else table[split].to_numpy(dtype=str)
    return _dataset(file, mods, labels, presence, list(groups), classes, split_values)


def _dataset(file: Path, mods: list[np.ndarray], labels: np.ndarray, presence: np.ndarray | None,
             names: list[str], classes: list[Any], split: Any) -> MultimodalDataset:
    if len(classes) < 2:
        raise DataError(f"{file}: only one class ({classes[0]!r}); a classifier needs at least two")
    try:
        return MultimodalDataset(modalities=tuple(mods), labels=labels, presence=presence, names=tuple(names),
                                 num_classes=len(classes), split=split)
    except DataError as exc:
        raise DataError(f"{file}: {exc}") from None


def _existing(path: str) -> Path:
    file = Path(path)
    if file.is_dir():
        raise DataError(f"{file} is a folder; give the data file's path (relative to the spec file)")
    if not file.is_file():
        raise DataError(f"data file not found: {file}; paths in a spec are relative to the spec file")
    return file


def _labels_length(y: np.ndarray, file: Path) -> int:
    if y.ndim != 1:
        raise DataError(f"{file}: y has shape {y.shape}; expected one label per sample")
    return int(y.shape[0])


def _classes(y: np.ndarray, file: Path) -> tuple[np.ndarray, list[Any]]:
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"{file}: labels contain NaN or infinity")
    if y.dtype.kind not in "iubUSf" or y.dtype == bool:
        raise DataError(f"{file}: labels must be integers or strings, got {y.dtype}")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise DataError(f"{file}: labels must be integers or strings, got fractional numbers")
    classes, labels = np.unique(y, return_inverse=True)
    return labels.astype(np.int64), classes.tolist()


def _finite(x: np.ndarray, present: np.ndarray | None, file: Path, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    rows = np.ones(x.shape[0], dtype=bool) if present is None else present
    bad = np.flatnonzero(rows & ~np.all(np.isfinite(x), axis=1))
    if bad.size:
        raise DataError(f"{file}: modality '{name}' has NaN or infinity in sample {bad[0]} (0-based)"
                        + ("" if present is None else " where the mask marks it present"))
    return x


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


def _few(columns: list[str]) -> str:
    return ", ".join(columns[:8]) + (f", ... ({len(columns)} in all)" if len(columns) > 8 else "")


# --- provenance --------------------------------------------------------------------------------------------------

_HASHES: dict[tuple[str, int, int], str] = {}
_ENTRIES: dict[tuple[str, int, int], dict[str, Any]] = {}


def sha256_of(path: Path) -> str:
    """The file's sha256 (cached per path, size and modification time within a process)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def data_files(options: dict[str, Any]) -> list[dict[str, Any]]:
    """Provenance of the files a loader's options name (``path``): path, sha256, size in bytes, and the shapes of
    an .npz's arrays or a table's rows x columns. A folder (PTB-XL, CMU-MOSEI) is listed with its file count and
    total size (hashing gigabytes on every run would cost more than it tells)."""
    raw = options.get("path")
    if not isinstance(raw, str):
        return []
    path = Path(raw)
    if path.is_dir():
        files = [f for f in path.rglob("*") if f.is_file()]
        return [{"path": str(path), "kind": "folder", "files": len(files),
                 "bytes": sum(f.stat().st_size for f in files)}]
    if not path.is_file():
        return []
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _ENTRIES:  # every record of a run names the same file: read its shapes once per process
        return [dict(_ENTRIES[key])]
    entry: dict[str, Any] = {"path": str(path), "sha256": sha256_of(path), "bytes": stat.st_size}
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                entry["shapes"] = {k: list(npz[k].shape) for k in npz.files}
        elif path.suffix in (".csv", ".tsv", ".txt"):
            with path.open("rb") as fh:
                rows = sum(1 for _ in fh) - 1
            entry["shapes"] = {"rows": rows}
    except Exception:  # the loader reports an unreadable file; provenance records what it can
        pass
    _ENTRIES[key] = entry
    return [dict(entry)]


def check_data_files(recorded: list[dict[str, Any]], *, what: str) -> None:
    """Refuse when a file recorded at training time has changed (sha256) or is gone.

    Raises:
        DataError: One line naming the file, what changed and what to do.
    """
    for entry in recorded or []:
        if "sha256" not in entry:
            continue
        path = Path(entry["path"])
        if not path.is_file():
            raise DataError(f"data file {path} that {what} was trained on is gone; restore it or train again")
        now = sha256_of(path)
        if now != entry["sha256"]:
            raise DataError(f"data file {path} changed since {what} was trained (sha256 {entry['sha256'][:12]} "
                            f"then, {now[:12]} now); restore it or train again")
