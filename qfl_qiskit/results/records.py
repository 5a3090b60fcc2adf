"""Result records: JSON files written atomically, each carrying its specs, seeds and provenance."""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from qfl_qiskit.atomic import atomic_write_json

#: Distributions whose versions every record stores.
TRACKED_PACKAGES = (
    "qfl-qiskit",
    "qiskit",
    "qiskit-aer",
    "qiskit-aer-gpu",
    "qiskit-ibm-runtime",
    "qiskit-machine-learning",
    "mitiq",
    "torch",
    "numpy",
    "pydantic",
    "flwr",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the tracked distributions (absent ones left out)."""
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def provenance() -> dict[str, Any]:
    """Python, platform and package versions, for reproducing a record."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
    }


def utc_stamp() -> str:
    """Compact UTC time for file names, e.g. 20261122T210700Z."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def make_record(
    record_type: str, *, specs: dict[str, Any], seeds: dict[str, int], payload: dict[str, Any],
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a record: type, time, specs (as JSON data with their ids), seeds, provenance, data, payload.

    Args:
        record_type: What the record holds (e.g. "transpile_report").
        specs: Named specs: pydantic specs (stored with their ``spec_id``) or plain JSON data.
        seeds: Every seed used.
        payload: The results.
        data: The data's provenance (``Splits.provenance()``: files with sha256, size and shapes, and the shapes as
            loaded); default: the files named by any spec's ``[data]`` (train and federated specs).

    Returns:
        The record as JSON-ready data.
    """
    spec_data = {}
    for key, spec in specs.items():
        if hasattr(spec, "spec_id"):
            spec_data[key] = {"spec_id": spec.spec_id, **spec.model_dump(mode="json")}
        else:
            spec_data[key] = spec
    if data is None:
        from qfl_qiskit.data.files import data_files

        named = [s.data for s in specs.values() if hasattr(getattr(s, "data", None), "options")]
        data = {"files": [f for d in named for f in data_files(d.options)]} if named else None
    return {
        "record_type": record_type,
        "created": datetime.now(timezone.utc).isoformat(),
        "specs": spec_data,
        "seeds": seeds,
        "provenance": provenance(),
        **({"data": data} if data is not None else {}),
        "payload": payload,
    }


def save_record(record: dict[str, Any], path: str | Path) -> Path:
    """Write a record atomically as JSON."""
    return atomic_write_json(path, record)


def load_record(path: str | Path) -> dict[str, Any]:
    """Read a record written by :func:`save_record`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
