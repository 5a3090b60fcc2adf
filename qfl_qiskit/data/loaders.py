"""Named loaders of real and synthetic multimodal data sets, and ``load_dataset`` to call one by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.data.external import cmu_mosei, ptbxl
from qfl_qiskit.data.synthetic import synthetic_parity, synthetic_polynomial
from qfl_qiskit.data.timeseries import basic_motions, japanese_vowels
from qfl_qiskit.errors import DataError

UCI_MFEAT_VIEWS: tuple[str, ...] = ("fou", "fac", "kar", "pix", "zer", "mor")
"""The six UCI Multiple Features views, in the order of the original files (76/216/64/240/47/6 features)."""

DIGITS_QUADRANTS: tuple[str, ...] = ("top_left", "top_right", "bottom_left", "bottom_right")
"""Modality names of :func:`digits_quadrants`, each a 4x4 quadrant of the 8x8 image flattened row-major."""


def uci_mfeat(*, views: tuple[str, ...] | None = None) -> MultimodalDataset:
    """UCI Multiple Features: 2000 handwritten digits (200 per class), six feature views, shipped with the package.

    Data: Duin, R., UCI Machine Learning Repository, CC BY 4.0 (see ``files/UCI_MFEAT_LICENSE.txt``).

    Args:
        views: Which views to keep, in the order given; None keeps all of :data:`UCI_MFEAT_VIEWS`.

    Returns:
        A data set of 2000 samples, float32 features, 10 classes, modality names = view names.

    Raises:
        DataError: If a view name is unknown or repeated.
    """
    views = UCI_MFEAT_VIEWS if views is None else tuple(views)
    unknown = [v for v in views if v not in UCI_MFEAT_VIEWS]
    if unknown or not views or len(set(views)) != len(views):
        raise DataError(f"views must be distinct names among {UCI_MFEAT_VIEWS}, got {views}")
    path = resources.files("qfl_qiskit.data").joinpath("files", "uci_mfeat.npz")
    with resources.as_file(path) as file, np.load(file) as npz:
        mods = tuple(npz[v] for v in views)
        labels = npz["labels"].astype(np.int64)
    return MultimodalDataset(modalities=mods, labels=labels, names=views, num_classes=10)


def digits_quadrants() -> MultimodalDataset:
    """scikit-learn's 8x8 digits (1797 images, 10 classes), each image cut into four 4x4 quadrants as modalities.

    Pixel values stay as given (0..16). Modality ``k`` holds ``images[:, r:r+4, c:c+4].reshape(-1, 16)`` with
    ``(r, c)`` = (0, 0), (0, 4), (4, 0), (4, 4) in the order of :data:`DIGITS_QUADRANTS`.

    Returns:
        A data set of 1797 samples with 4 modalities of 16 features and 10 classes.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float32)
    n = images.shape[0]
    mods = tuple(images[:, r : r + 4, c : c + 4].reshape(n, 16) for r in (0, 4) for c in (0, 4))
    return MultimodalDataset(modalities=mods, labels=digits.target, names=DIGITS_QUADRANTS, num_classes=10)


LOADERS: dict[str, Callable[..., MultimodalDataset]] = {
    "uci_mfeat": uci_mfeat,
    "digits_quadrants": digits_quadrants,
    "synthetic_polynomial": synthetic_polynomial,
    "synthetic_parity": synthetic_parity,
    "basic_motions": basic_motions,
    "japanese_vowels": japanese_vowels,
    "ptbxl": ptbxl,
    "cmu_mosei": cmu_mosei,
}
"""Every loader by name; ``load_dataset`` looks names up here."""


def load_dataset(name: str, **kwargs: Any) -> MultimodalDataset:
    """Load a data set by name, passing ``kwargs`` to its loader.

    Args:
        name: One of the keys of :data:`LOADERS`.
        **kwargs: The loader's own keyword arguments.

    Returns:
        The loaded data set.

    Raises:
        DataError: If the name is unknown or the arguments do not fit the loader.
    """
    try:
        loader = LOADERS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(LOADERS))}") from None
    try:
        inspect.signature(loader).bind(**kwargs)
    except TypeError as exc:
        raise DataError(f"bad arguments for data set {name!r}: {exc}") from None
    _check_types(name, loader, kwargs)
    try:
        return loader(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:  # a value of the right type the loader still cannot use
        raise DataError(f"bad arguments for data set {name!r} ({', '.join(kwargs) or 'none'}): "
                        f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}") from None


def _check_types(name: str, loader: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Each argument against the loader's annotation (a number for a number, a list of names for names...)."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    hints = typing.get_type_hints(loader)
    for key, value in kwargs.items():
        hint = hints.get(key)
        if hint is None:
            continue
        wrong_bool = isinstance(value, bool) and hint is not bool
        try:
            TypeAdapter(hint).validate_python(value, strict=not isinstance(value, (list, tuple)))
        except ValidationError:
            wrong_bool = True
        if wrong_bool:
            raise DataError(f"data set {name!r}: option {key} = {value!r} is not a valid {_hint_name(hint)}")
        if isinstance(value, int) and not isinstance(value, bool) and key == "seed" and value < 0:
            raise DataError(f"data set {name!r}: seed must be >= 0, got {value}")


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
