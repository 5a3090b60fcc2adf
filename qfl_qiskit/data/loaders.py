"""Named loaders of real and synthetic multimodal data sets, and ``load_dataset`` to call one by name."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np

from qfl_qiskit.data.dataset import MultimodalDataset
from qfl_qiskit.data.external import cmu_mosei, ptbxl
from qfl_qiskit.data.files import csv_table, npz_views, parquet_table
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
    "npz": npz_views,
    "csv": csv_table,
    "parquet": parquet_table,
}
"""The built-in loaders by name. :func:`resolve_loader` also finds ``"package.module:function"`` and loaders
registered under the entry-point group :data:`ENTRY_POINT_GROUP`."""

ENTRY_POINT_GROUP = "qfl_qiskit.datasets"
"""Entry-point group for data-set plugins: ``[project.entry-points."qfl_qiskit.datasets"] name = "pkg.mod:fn"``."""


def resolve_loader(name: str) -> Callable[..., MultimodalDataset]:
    """The loader a spec's ``[data] name`` means: a built-in (:data:`LOADERS`), ``"package.module:function"``
    (imported; the working directory is searched too, as ``python -m`` does), or an entry point of the group
    :data:`ENTRY_POINT_GROUP`. The same name resolves the same way in worker processes and federated clients,
    which load the data themselves.

    Raises:
        DataError: Unknown name, a module that cannot be imported, or no such function in it.
    """
    if name in LOADERS:
        return LOADERS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        module = _import(module_name, name)
        loader = getattr(module, attr, None)
        if not callable(loader):
            raise DataError(f"data loader {name!r}: module {module_name} has no function {attr!r}")
        return loader
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if found:
        try:
            return found[0].load()
        except Exception as exc:
            raise DataError(f"data loader {name!r} (entry point {found[0].value}) does not load: "
                            f"{type(exc).__name__}: {exc}") from None
    plugins = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(LOADERS) + plugins)}, "
                    "or 'package.module:function'")


def _import(module_name: str, name: str) -> Any:
    import importlib
    import os
    import sys

    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name.split(".")[0] or os.getcwd() in sys.path:
            raise DataError(f"data loader {name!r}: cannot import {module_name}: {exc}") from None
    except Exception as exc:  # an error inside the user's module
        raise DataError(f"data loader {name!r}: importing {module_name} failed: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:160]}") from None
    sys.path.append(os.getcwd())
    return _import(module_name, name)


def load_dataset(name: str, **kwargs: Any) -> MultimodalDataset:
    """Load a data set by name, passing ``kwargs`` to its loader.

    Args:
        name: A built-in name (:data:`LOADERS`), ``"package.module:function"`` or an entry-point name
            (:func:`resolve_loader`).
        **kwargs: The loader's own keyword arguments.

    Returns:
        The loaded data set.

    Raises:
        DataError: If the name is unknown or the arguments do not fit the loader.
    """
    loader = resolve_loader(name)
    try:
        inspect.signature(loader).bind(**kwargs)
    except TypeError as exc:
        raise DataError(f"bad arguments for data set {name!r}: {exc}") from None
    _check_types(name, loader, kwargs)
    try:
        ds = loader(**kwargs)
    except DataError:
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
        if name not in LOADERS:  # a plugin's own failure: the user's to fix
            raise DataError(f"data loader {name!r} failed: {reason}") from None
        if not isinstance(exc, (TypeError, ValueError, KeyError)):
            raise  # a failure inside a built-in loader is ours: reported as an internal error
        # a value of the right type the built-in loader still cannot use
        raise DataError(f"bad arguments for data set {name!r} ({', '.join(kwargs) or 'none'}): {reason}") from None
    if not isinstance(ds, MultimodalDataset):
        raise DataError(f"data loader {name!r} returned {type(ds).__name__}, not a qfl_qiskit.data.MultimodalDataset")
    return ds


def _check_types(name: str, loader: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Each argument against the loader's annotation (a number for a number, a list of names for names...)."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    try:
        hints = typing.get_type_hints(loader)
    except Exception:  # a plugin's annotations that do not resolve: its own checks apply
        return
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
