"""Loaders of multimodal data sets the user downloads: PTB-XL (12-lead ECG) and CMU-MOSEI (text/audio/vision).

Neither set can ship with the package; every loader takes the folder (or file) the user downloaded and raises
:class:`~qfl_qiskit.errors.DataError` naming the missing file and where to get it.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.data.timeseries import series_features
from qfl_qiskit.errors import DataError

PTBXL_LEADS: tuple[str, ...] = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
"""The 12 standard leads, the modality names of :func:`ptbxl` (matched case-insensitively, so ``aVR`` works)."""

PTBXL_CLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
"""PTB-XL diagnostic superclasses; label ``i`` of :func:`ptbxl` is ``PTBXL_CLASSES[i]``."""

PTBXL_FOLDS: dict[str, tuple[int, ...]] = {
    "train": tuple(range(1, 9)),
    "val": (9,),
    "test": (10,),
    "all": tuple(range(1, 11)),
}
"""``strat_fold`` values of each PTB-XL split (the recommended split of the PTB-XL authors)."""

MOSEI_MODALITIES: dict[str, int] = {"text": 300, "audio": 74, "vision": 35}
"""CMU-MOSEI modalities and their feature counts (GloVe, COVAREP, FACET 4.2)."""

MOSEI_CSD_FILES: dict[str, str] = {
    "text": "CMU_MOSEI_TimestampedWordVectors.csd",
    "audio": "CMU_MOSEI_COVAREP.csd",
    "vision": "CMU_MOSEI_VisualFacet42.csd",
    "labels": "CMU_MOSEI_Labels.csd",
}
"""File names the .csd format of :func:`cmu_mosei` expects (the CMU Multimodal SDK's names)."""

MOSEI_LABELS: dict[str, int] = {"sentiment2": 2, "sentiment3": 3, "sentiment7": 7}
"""Label schemes of :func:`cmu_mosei` and their class counts."""

_PTBXL_HINT = "download PTB-XL from https://physionet.org/content/ptb-xl/ and pass its root folder"
_MOSEI_HINT = "pass the aligned mosei_senti_data.pkl or a folder of CMU Multimodal SDK .csd files"


# --- PTB-XL ---------------------------------------------------------------------------------------------------


def ptbxl(
    path: str | Path,
    *,
    sampling_rate: int = 100,
    leads: tuple[str, ...] | None = None,
    split: str = "all",
) -> MultimodalDataset:
    """PTB-XL 12-lead ECGs with leads as modalities and the 5 diagnostic superclasses as labels.

    Label rule (single-label): each record's superclasses are the ``diagnostic_class`` values of all its
    ``scp_codes`` whose row in ``scp_statements.csv`` has ``diagnostic == 1``, at any likelihood (as in the PTB-XL
    example code). Records with exactly one superclass are kept with that class; records with none or several are
    dropped. Features per lead: the 8 summary features of :func:`~qfl_qiskit.data.timeseries.series_features`
    (signal in mV).

    Args:
        path: The PTB-XL root folder (holding ``ptbxl_database.csv``, ``scp_statements.csv``, ``records100/``...).
        sampling_rate: 100 (``filename_lr`` records) or 500 (``filename_hr`` records).
        leads: Leads to keep, in the order given; None keeps all of :data:`PTBXL_LEADS`.
        split: ``"train"`` (strat_fold 1-8), ``"val"`` (9), ``"test"`` (10) or ``"all"``.

    Returns:
        A data set with one modality of 8 features per lead and 5 classes (:data:`PTBXL_CLASSES`).

    Raises:
        DataError: On a missing folder, CSV or record file, an unknown lead, split or sampling rate, or when no record
            of the split has exactly one superclass.
    """
    root = _folder(path, "PTB-XL", _PTBXL_HINT)
    leads = _check_leads(leads)
    if split not in PTBXL_FOLDS:
        raise DataError(f"split must be one of {tuple(PTBXL_FOLDS)}, got {split!r}")
    if sampling_rate not in (100, 500):
        raise DataError(f"sampling_rate must be 100 or 500, got {sampling_rate!r}")
    table = _ptbxl_table(root, split, "filename_lr" if sampling_rate == 100 else "filename_hr")
    feats = np.stack([_ptbxl_record(root, name, leads) for name in table["filename"]])
    mods = tuple(feats[:, m, :].astype(np.float32) for m in range(len(leads)))
    labels = table["label"].to_numpy(dtype=np.int64)
    return MultimodalDataset(modalities=mods, labels=labels, names=leads, num_classes=len(PTBXL_CLASSES))


def _folder(path: str | Path, what: str, hint: str) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{what} folder {str(root)!r} does not exist; {hint}")
    return root


def _require(file: Path, hint: str) -> Path:
    if not file.is_file():
        raise DataError(f"expected file {str(file)!r} is missing; {hint}")
    return file


def _check_leads(leads: tuple[str, ...] | None) -> tuple[str, ...]:
    if leads is None:
        return PTBXL_LEADS
    if isinstance(leads, str):
        leads = (leads,)
    canon = tuple(str(lead).upper() for lead in leads)
    unknown = [lead for lead, c in zip(leads, canon, strict=True) if c not in PTBXL_LEADS]
    if unknown or not canon or len(set(canon)) != len(canon):
        raise DataError(f"leads must be distinct names among {PTBXL_LEADS}, got {tuple(leads)}")
    return canon


def _ptbxl_table(root: Path, split: str, column: str) -> Any:
    """Rows of the split with exactly one diagnostic superclass: columns ``filename`` and ``label``."""
    import pandas as pd

    db = pd.read_csv(_require(root / "ptbxl_database.csv", _PTBXL_HINT))
    scp = pd.read_csv(_require(root / "scp_statements.csv", _PTBXL_HINT), index_col=0)
    needed = {"scp_codes", "strat_fold", column}
    if not needed <= set(db.columns) or not {"diagnostic", "diagnostic_class"} <= set(scp.columns):
        raise DataError(f"PTB-XL CSVs lack columns {sorted(needed)} / diagnostic, diagnostic_class; {_PTBXL_HINT}")
    code_class = scp[scp["diagnostic"] == 1]["diagnostic_class"].to_dict()
    db = db[db["strat_fold"].isin(PTBXL_FOLDS[split])]
    labels = [_superclass(codes, code_class) for codes in db["scp_codes"]]
    table = pd.DataFrame({"filename": db[column].to_numpy(), "label": labels})
    table = table[table["label"] >= 0]
    if table.empty:
        raise DataError(f"no PTB-XL record in split {split!r} has exactly one diagnostic superclass")
    return table


def _superclass(codes: str, code_class: dict[str, str]) -> int:
    """Index in PTBXL_CLASSES of the record's single superclass, or -1 if it has none or several."""
    try:
        parsed = ast.literal_eval(codes)
    except (ValueError, SyntaxError):
        raise DataError(f"scp_codes entry {codes!r} is not a dict literal; is ptbxl_database.csv intact?") from None
    classes = {code_class[c] for c in parsed if c in code_class and code_class[c] in PTBXL_CLASSES}
    return PTBXL_CLASSES.index(classes.pop()) if len(classes) == 1 else -1


def _ptbxl_record(root: Path, name: str, leads: tuple[str, ...]) -> np.ndarray:
    """Features of one WFDB record, shape (len(leads), F)."""
    import wfdb

    _require(root / f"{name}.hea", _PTBXL_HINT + " (with the records100/ or records500/ folder)")
    signal, fields = wfdb.rdsamp(str(root / name))
    index = {str(s).upper(): i for i, s in enumerate(fields["sig_name"])}
    missing = [lead for lead in leads if lead not in index]
    if missing:
        raise DataError(f"record {name!r} has no lead(s) {missing}; its leads are {fields['sig_name']}")
    x = np.nan_to_num(signal[:, [index[lead] for lead in leads]].T, nan=0.0, posinf=0.0, neginf=0.0)
    return series_features(x)


# --- CMU-MOSEI ------------------------------------------------------------------------------------------------


def cmu_mosei(path: str | Path, *, split: str = "all", label: str = "sentiment3") -> MultimodalDataset:
    """CMU-MOSEI utterances with text (300), audio (74) and vision (35) features, each averaged over time.

    Two formats: (a) the aligned pickle of the literature (a ``.pkl`` file, or a folder holding
    ``mosei_senti_data.pkl``): a dict with ``"train"``/``"valid"``/``"test"``, each holding ``"text"`` (N, T, 300),
    ``"audio"`` (N, T, 74), ``"vision"`` (N, T, 35), ``"labels"`` (N, 1, 1); (b) a folder of CMU Multimodal SDK
    ``.csd`` files (:data:`MOSEI_CSD_FILES`), one sample per labelled segment of ``CMU_MOSEI_Labels.csd``, each
    modality averaged over its steps whose interval overlaps the segment (a modality with no such step is marked
    absent in ``presence``).

    Raw features contain NaN and -inf (COVAREP audio has -inf): every non-finite value is set to 0 before averaging.
    In the pickle, all-zero steps (the alignment padding) are left out of the average.

    Labels from the sentiment score s in [-3, 3]: ``"sentiment2"``: 1 if s >= 0 else 0; ``"sentiment3"``:
    0 negative (s < 0), 1 neutral (s == 0), 2 positive (s > 0); ``"sentiment7"``: round(s) clipped to [-3, 3],
    plus 3 (0..6).

    Only load pickles you trust: unpickling can run code.

    Args:
        path: The pickle file, or a folder holding it or the .csd files.
        split: ``"train"``, ``"valid"`` (or ``"val"``), ``"test"`` or ``"all"``; the .csd format supports only
            ``"all"`` (it carries no standard folds; split with ``stratified_split``).
        label: One of :data:`MOSEI_LABELS`.

    Returns:
        A data set with modalities ``("text", "audio", "vision")``, float32.

    Raises:
        DataError: On a missing path or file, a malformed file, or an unknown split or label.
    """
    if label not in MOSEI_LABELS:
        raise DataError(f"label must be one of {tuple(MOSEI_LABELS)}, got {label!r}")
    split = "valid" if split == "val" else split
    if split not in ("train", "valid", "test", "all"):
        raise DataError(f"split must be one of ('train', 'valid', 'test', 'all'), got {split!r}")
    root = Path(path)
    if root.is_file() or (root / "mosei_senti_data.pkl").is_file():
        file = root if root.is_file() else root / "mosei_senti_data.pkl"
        mods, presence, scores = _mosei_pickle(file, split)
    else:
        _folder(root, "CMU-MOSEI", _MOSEI_HINT)
        if split != "all":
            raise DataError(f"the .csd format has no standard folds: use split='all', not {split!r}")
        mods, presence, scores = _mosei_csd(root)
    return MultimodalDataset(
        modalities=mods,
        labels=sentiment_labels(scores, label),
        presence=presence,
        names=tuple(MOSEI_MODALITIES),
        num_classes=MOSEI_LABELS[label],
    )


def sentiment_labels(scores: np.ndarray, label: str) -> np.ndarray:
    """Map sentiment scores in [-3, 3] to class labels under a :data:`MOSEI_LABELS` scheme (see :func:`cmu_mosei`).

    Args:
        scores: Sentiment scores, shape (N,).
        label: ``"sentiment2"``, ``"sentiment3"`` or ``"sentiment7"``.

    Returns:
        Integer labels of shape (N,).

    Raises:
        DataError: If ``label`` is unknown or a score is not finite.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(s)):
        raise DataError("sentiment scores contain NaN or inf; the label file is damaged")
    if label == "sentiment2":
        return (s >= 0).astype(np.int64)
    if label == "sentiment3":
        return (np.sign(s) + 1).astype(np.int64)
    if label == "sentiment7":
        return (np.clip(np.round(s), -3, 3) + 3).astype(np.int64)
    raise DataError(f"label must be one of {tuple(MOSEI_LABELS)}, got {label!r}")


def _clean(x: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _mosei_pickle(file: Path, split: str) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    with file.open("rb") as handle:
        try:
            data = pickle.load(handle)  # noqa: S301 - documented: trusted files only
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise DataError(f"{str(file)!r} is not a readable pickle ({exc}); {_MOSEI_HINT}") from None
    parts = ("train", "valid", "test") if split == "all" else (split,)
    keys = (*MOSEI_MODALITIES, "labels")
    bad = not isinstance(data, dict) or any(
        not isinstance(data.get(p), dict) or not set(keys) <= set(data[p]) for p in parts
    )
    if bad:
        raise DataError(f"{str(file)!r} lacks splits {parts} with keys {keys}; {_MOSEI_HINT}")
    mods = []
    for name, dim in MOSEI_MODALITIES.items():
        blocks = [_check_dim(_time_mean(_clean(data[p][name])), dim, name, file) for p in parts]
        mods.append(np.concatenate(blocks).astype(np.float32))
    scores = np.concatenate([np.asarray(data[p]["labels"], dtype=np.float64).reshape(-1) for p in parts])
    if scores.shape[0] != mods[0].shape[0]:
        raise DataError(f"{str(file)!r}: {scores.shape[0]} labels for {mods[0].shape[0]} samples; is it (N, 1, 1)?")
    return tuple(mods), np.ones((scores.shape[0], len(mods)), dtype=bool), scores


def _time_mean(x: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of (N, T, d), ignoring all-zero steps (padding); a sample with none gets zeros."""
    if x.ndim != 3:
        raise DataError(f"MOSEI pickle arrays must be (N, T, d), got shape {x.shape}")
    keep = np.any(x != 0, axis=2, keepdims=True)
    return (x * keep).sum(axis=1) / np.maximum(keep.sum(axis=1), 1)


def _check_dim(x: np.ndarray, dim: int, name: str, file: Path) -> np.ndarray:
    if x.shape[1] != dim:
        raise DataError(f"{str(file)!r}: {name} has {x.shape[1]} features, expected {dim}")
    return x


def _read_csd(file: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Video id -> (features (T, d), intervals (T, 2)) of one computational sequence."""
    import h5py

    _require(file, _MOSEI_HINT + " (CMU Multimodal SDK: CMU_MOSEI computational sequences)")
    try:
        with h5py.File(file, "r") as h5:
            (root,) = h5.values()
            return {vid: (g["features"][()], g["intervals"][()]) for vid, g in root["data"].items()}
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{str(file)!r} is not a computational sequence (root/<name>/data/<id>/...): {exc}") from None


def _mosei_csd(root: Path) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    seqs = {key: _read_csd(root / name) for key, name in MOSEI_CSD_FILES.items()}
    rows: list[list[np.ndarray]] = []
    present: list[list[bool]] = []
    scores: list[float] = []
    for vid, (label_feats, label_ints) in sorted(seqs["labels"].items()):
        for values, (start, end) in zip(label_feats, label_ints, strict=True):
            feats = [_segment_mean(seqs[m].get(vid), start, end, d) for m, d in MOSEI_MODALITIES.items()]
            rows.append([f for f, _ in feats])
            present.append([p for _, p in feats])
            scores.append(float(values[0]))
    if not rows:
        raise DataError(f"{str(root / MOSEI_CSD_FILES['labels'])!r} holds no labelled segment")
    mods = tuple(np.stack([r[m] for r in rows]).astype(np.float32) for m in range(len(MOSEI_MODALITIES)))
    return mods, np.array(present, dtype=bool), np.array(scores)


def _segment_mean(
    seq: tuple[np.ndarray, np.ndarray] | None, start: float, end: float, dim: int
) -> tuple[np.ndarray, bool]:
    """Mean of the steps overlapping [start, end] and whether there was any; zeros and False otherwise."""
    if seq is None:
        return np.zeros(dim), False
    feats, ints = _clean(seq[0]), np.asarray(seq[1], dtype=np.float64)
    if feats.ndim != 2 or feats.shape[1] != dim:
        raise DataError(f"a .csd sequence has features of shape {feats.shape}, expected (T, {dim})")
    hit = (ints[:, 0] < end) & (ints[:, 1] > start)
    if not hit.any():
        return np.zeros(dim), False
    return feats[hit].mean(axis=0), True
