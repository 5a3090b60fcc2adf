"""Tests of qfl_qiskit.data.external on tiny PTB-XL and CMU-MOSEI files written in the real schema."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from qfl_qiskit.data import (
    LOADERS,
    MOSEI_CSD_FILES,
    PTBXL_CLASSES,
    PTBXL_LEADS,
    SERIES_FEATURES,
    cmu_mosei,
    load_dataset,
    ptbxl,
    sentiment_labels,
)
from qfl_qiskit.errors import DataError

from .ptbxl_fake import write_ptbxl

F = len(SERIES_FEATURES)

# ecg_id -> (scp_codes, strat_fold, expected superclass or None when the record is dropped)
PTB_RECORDS: dict[int, tuple[str, int, str | None]] = {
    1: ("{'NORM': 100.0, 'SR': 0.0}", 1, "NORM"),
    2: ("{'IMI': 50.0, 'LMI': 100.0}", 2, "MI"),
    3: ("{'NDT': 100.0}", 9, "STTC"),
    4: ("{'IRBBB': 100.0}", 10, "CD"),
    5: ("{'LVH': 100.0, 'SR': 0.0}", 3, "HYP"),
    6: ("{'NORM': 80.0, 'IMI': 15.0}", 4, None),  # two superclasses
    7: ("{'SR': 0.0}", 10, None),  # no diagnostic code
    8: ("{'ASMI': 0.0, 'CLBBB': 100.0}", 9, None),  # MI + CD
    9: ("{'LAFB': 100.0, 'IRBBB': 50.0}", 5, "CD"),
}
def _signal(ecg_id: int) -> np.ndarray:
    """(1000, 12) mV: lead k has mean ecg_id + k / 10 plus a small sine."""
    t = np.arange(1000) / 100.0
    return np.stack([ecg_id + k / 10 + 0.2 * np.sin(2 * np.pi * (k + 1) * t) for k in range(12)], axis=1)


@pytest.fixture(scope="module")
def ptb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = {ecg_id: (codes, fold) for ecg_id, (codes, fold, _) in PTB_RECORDS.items()}
    return write_ptbxl(tmp_path_factory.mktemp("ptbxl"), records, _signal)


def _expected(folds: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(i, PTBXL_CLASSES.index(c)) for i, (_, f, c) in PTB_RECORDS.items() if c is not None and f in folds]


def test_ptbxl_labels_and_features(ptb_dir: Path) -> None:
    ds = ptbxl(ptb_dir)
    expected = _expected(tuple(range(1, 11)))
    assert ds.labels.tolist() == [c for _, c in expected] and ds.num_classes == 5
    assert ds.names == PTBXL_LEADS and ds.dims == (F,) * 12
    assert all(x.dtype == np.float32 and np.isfinite(x).all() for x in ds.modalities)
    for row, (ecg_id, _) in enumerate(expected):  # mean feature of lead V3 (index 8) identifies record and lead
        np.testing.assert_allclose(ds.modalities[8][row, 0], ecg_id + 0.8, atol=1e-3)


@pytest.mark.parametrize(("split", "folds"), [("train", tuple(range(1, 9))), ("val", (9,)), ("test", (10,))])
def test_ptbxl_splits(ptb_dir: Path, split: str, folds: tuple[int, ...]) -> None:
    ds = ptbxl(ptb_dir, split=split)
    assert ds.labels.tolist() == [c for _, c in _expected(folds)]


def test_ptbxl_lead_selection(ptb_dir: Path) -> None:
    ds = ptbxl(ptb_dir, leads=("aVR", "V6"), split="train")
    assert ds.names == ("AVR", "V6") and ds.num_modalities == 2
    np.testing.assert_allclose(ds.modalities[0][:, 0], [1.3, 2.3, 5.3, 9.3], atol=1e-3)
    assert load_dataset("ptbxl", path=ptb_dir, leads=("I",)).num_modalities == 1
    assert {"ptbxl", "cmu_mosei"} <= set(LOADERS)


def test_ptbxl_bad_input(ptb_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist.*physionet"):
        ptbxl(tmp_path / "nowhere")
    with pytest.raises(DataError, match="ptbxl_database.csv.*missing"):
        ptbxl(tmp_path)
    with pytest.raises(DataError, match="leads must be"):
        ptbxl(ptb_dir, leads=("V7",))
    with pytest.raises(DataError, match="leads must be"):
        ptbxl(ptb_dir, leads=("I", "i"))
    with pytest.raises(DataError, match="split must be"):
        ptbxl(ptb_dir, split="valid")
    with pytest.raises(DataError, match="sampling_rate"):
        ptbxl(ptb_dir, sampling_rate=250)
    with pytest.raises(DataError, match="records500.*missing"):
        ptbxl(ptb_dir, sampling_rate=500)


# --- CMU-MOSEI ------------------------------------------------------------------------------------------------

DIMS = {"text": 300, "audio": 74, "vision": 35}


def test_sentiment_labels() -> None:
    s = np.array([-3.0, -2.6, -0.4, 0.0, 0.2, 0.5, 1.5, 2.9, 3.0])
    assert sentiment_labels(s, "sentiment2").tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert sentiment_labels(s, "sentiment3").tolist() == [0, 0, 0, 1, 2, 2, 2, 2, 2]
    assert sentiment_labels(s, "sentiment7").tolist() == [0, 0, 3, 3, 3, 3, 5, 6, 6]  # round half to even
    with pytest.raises(DataError, match="label must be"):
        sentiment_labels(s, "emotion")


def _pickle_split(n: int, offset: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    part = {m: np.zeros((n, 4, d)) for m, d in DIMS.items()}
    for m in DIMS:
        part[m][:, 1:, :] = offset + np.arange(n)[:, None, None]  # step 0 is zero padding
    part["audio"][:, 1, 0] = -np.inf
    part["vision"][:, 2, 0] = np.nan
    part["labels"] = rng.uniform(-3, 3, size=(n, 1, 1))
    part["labels"][0, 0, 0] = 0.0
    return part


@pytest.fixture(scope="module")
def mosei_pkl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    sizes = {"train": (4, 0.0), "valid": (2, 10.0), "test": (3, 20.0)}
    data = {p: _pickle_split(n, offset, rng) for p, (n, offset) in sizes.items()}
    file = tmp_path_factory.mktemp("mosei") / "mosei_senti_data.pkl"
    file.write_bytes(pickle.dumps(data))
    return file


def test_mosei_pickle(mosei_pkl: Path) -> None:
    data = pickle.loads(mosei_pkl.read_bytes())
    ds = cmu_mosei(mosei_pkl)
    assert len(ds) == 9 and ds.names == ("text", "audio", "vision") and ds.dims == (300, 74, 35)
    assert all(np.isfinite(x).all() for x in ds.modalities) and ds.presence.all()
    np.testing.assert_allclose(ds.modalities[0][:4, 0], [0, 1, 2, 3])  # padding step ignored
    np.testing.assert_allclose(ds.modalities[1][1, :2], [(0 + 1 + 1) / 3, 1.0])  # -inf counted as 0
    np.testing.assert_allclose(ds.modalities[2][4, 0], 20 / 3)  # valid sample 0: 10, NaN->0, 10
    scores = np.concatenate([data[p]["labels"].reshape(-1) for p in ("train", "valid", "test")])
    assert ds.labels.tolist() == sentiment_labels(scores, "sentiment3").tolist() and ds.labels[0] == 1
    test = cmu_mosei(mosei_pkl.parent, split="test", label="sentiment7")
    assert len(test) == 3 and test.num_classes == 7
    np.testing.assert_allclose(test.modalities[0][:, 0], [20, 21, 22])
    assert test.labels.tolist() == (np.clip(np.round(data["test"]["labels"].reshape(-1)), -3, 3) + 3).tolist()
    assert len(cmu_mosei(mosei_pkl, split="val", label="sentiment2")) == 2


def _write_csd(file: Path, root_name: str, videos: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    import h5py

    with h5py.File(file, "w") as h5:
        group = h5.create_group(root_name)
        group.create_group("metadata")
        data = group.create_group("data")
        for vid, (feats, ints) in videos.items():
            data.create_group(vid).create_dataset("features", data=feats)
            data[vid].create_dataset("intervals", data=ints)


@pytest.fixture(scope="module")
def csd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("csd")
    steps = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [3.0, 4.0]])
    seq = {m: {v: (np.tile(np.arange(4.0)[:, None] + k, (1, d)), steps) for k, v in enumerate(("vid_a", "vid_b"))}
           for m, d in DIMS.items()}
    seq["audio"]["vid_a"][0][0, :] = -np.inf
    del seq["vision"]["vid_b"]
    names = {"text": "glove_vectors", "audio": "COVAREP", "vision": "FACET 4.2"}
    for m in DIMS:
        _write_csd(root / MOSEI_CSD_FILES[m], names[m], seq[m])
    scores_a = np.array([[1.4, 0, 0, 0, 0, 0, 0], [-0.6, 0, 0, 0, 0, 0, 0]])
    labels = {"vid_a": (scores_a, np.array([[0.0, 2.0], [2.0, 4.0]])),
              "vid_b": (np.array([[0.0, 1, 0, 0, 0, 0, 0]]), np.array([[1.0, 3.0]]))}
    _write_csd(root / MOSEI_CSD_FILES["labels"], "All Labels", labels)
    return root


def test_mosei_csd(csd_dir: Path) -> None:
    ds = cmu_mosei(csd_dir, label="sentiment7")
    assert len(ds) == 3 and ds.dims == (300, 74, 35)
    assert ds.labels.tolist() == [4, 2, 3]  # 1.4 -> 1 -> 4, -0.6 -> -1 -> 2, 0 -> 3
    np.testing.assert_allclose(ds.modalities[0][:, 0], [0.5, 2.5, 2.5])  # segment means of steps 0-1, 2-3, 1-2 (+1)
    np.testing.assert_allclose(ds.modalities[1][0, 0], 0.5)  # -inf -> 0, then mean(0, 1)
    assert ds.presence.tolist() == [[True] * 3, [True] * 3, [True, True, False]]
    assert cmu_mosei(csd_dir).labels.tolist() == [2, 0, 1]


def test_mosei_bad_input(mosei_pkl: Path, csd_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        cmu_mosei(tmp_path / "nowhere")
    with pytest.raises(DataError, match="CMU_MOSEI_TimestampedWordVectors.csd.*missing"):
        cmu_mosei(tmp_path)
    with pytest.raises(DataError, match="label must be"):
        cmu_mosei(mosei_pkl, label="sentiment5")
    with pytest.raises(DataError, match="split must be"):
        cmu_mosei(mosei_pkl, split="dev")
    with pytest.raises(DataError, match="no standard folds"):
        cmu_mosei(csd_dir, split="train")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"train": {"text": np.zeros((1, 2, 300))}}))
    with pytest.raises(DataError, match="lacks splits"):
        cmu_mosei(bad)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a readable pickle"):
        cmu_mosei(tmp_path / "junk.pkl")
