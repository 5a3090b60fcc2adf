"""Backend calibration data as plain JSON data, and dated calibration snapshots on disk.

A calibration is the part of a backend's ``Target`` that Aer's device noise model reads: per-qubit T1, T2 and
frequency, per-instruction (and per-qargs) error and duration (``measure`` carries the readout error), the
backend's operation names and ``dt``; plus the coupling map, the calibration time and package versions for the
record. Every noise model of a backend is built from this data (:mod:`qfl_qiskit.noise.models`), whether it came
from the live backend or from a snapshot file, so a snapshot rebuilds the identical model (JSON keeps floats exact).
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime, timezone
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qfl_qiskit.atomic import atomic_write_text
from qfl_qiskit.errors import NoiseError
from qfl_qiskit.transpile import calibration_time, resolve_backend

if TYPE_CHECKING:
    from qiskit.providers import BackendV2

#: Format tag written into (and required from) every snapshot file.
SNAPSHOT_FORMAT = "qfl-calibration-snapshot/1"
_VERSIONED = ("qiskit", "qiskit-aer", "qiskit-aer-gpu", "qiskit-ibm-runtime", "numpy")
_REQUIRED = ("format", "backend", "num_qubits", "operation_names", "qubits", "instructions")
_NOT_GATES = {"measure", "reset", "delay", "id", "rz"}  # left out of the median gate errors


def calibration_from_backend(backend: BackendV2, *, name: str | None = None) -> dict[str, Any]:
    """Read a backend's calibration into JSON-ready data.

    Args:
        backend: A ``BackendV2`` with a target (fake, generic or IBM backend).
        name: The name the backend was resolved by (defaults to ``backend.name``).

    Returns:
        The calibration (see the module docstring); times in seconds, frequencies in Hz.
    """
    target = backend.target
    props = target.qubit_properties or [None] * target.num_qubits
    qubits = [
        {"t1": _num(getattr(p, "t1", None)), "t2": _num(getattr(p, "t2", None)),
         "frequency": _num(getattr(p, "frequency", None))}
        for p in props
    ]
    instructions: dict[str, list[dict[str, Any]]] = {}
    for op_name in sorted(target.operation_names):
        rows = []
        for qargs, inst in (target[op_name] or {}).items():
            if qargs is None or inst is None:
                continue
            rows.append({"qubits": list(qargs), "error": _num(inst.error), "duration": _num(inst.duration)})
        if rows:
            instructions[op_name] = rows
    cmap = target.build_coupling_map()
    coupling = sorted({tuple(edge) for edge in cmap.get_edges()}) if cmap is not None else []
    return {
        "format": SNAPSHOT_FORMAT,
        "backend": name or backend.name,
        "calibration_time": calibration_time(backend),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "num_qubits": target.num_qubits,
        "dt": _num(target.dt),
        "operation_names": sorted(backend.operation_names),
        "coupling_map": [list(edge) for edge in coupling],
        "qubits": qubits,
        "instructions": instructions,
        "packages": _versions(),
    }


@cache
def live_calibration(backend_name: str) -> dict[str, Any]:
    """The calibration of a backend resolved by name (cached per name; treat the result as read-only).

    Raises:
        BackendError: Unknown backend name.
    """
    return calibration_from_backend(resolve_backend(backend_name), name=backend_name)


def snapshot_backend(backend_name: str, directory: str | Path = "noise_models") -> Path:
    """Write a dated calibration snapshot ``<directory>/<backend>_<calibration date>.json`` atomically.

    The date is the backend's calibration date (today's UTC date when the backend gives none); a second snapshot
    of the same calibration overwrites the first with identical numbers.

    Args:
        backend_name: Backend name, as :func:`qfl_qiskit.transpile.resolve_backend` takes it.
        directory: Folder to write into (created if missing).

    Returns:
        The path written.

    Raises:
        BackendError: Unknown backend name.
    """
    data = calibration_from_backend(resolve_backend(backend_name), name=backend_name)
    stamp = data["calibration_time"] or datetime.now(timezone.utc).isoformat()
    path = Path(directory) / f"{backend_name}_{stamp[:10]}.json"
    return atomic_write_text(path, _json_text(data) + "\n")


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """Read and check a snapshot file written by :func:`snapshot_backend`.

    Raises:
        NoiseError: Missing file, not JSON, or not a calibration snapshot (one line).
    """
    p = Path(path)
    if not p.is_file():
        raise NoiseError(f"calibration snapshot not found: {p}; write one with `qfl noise snapshot BACKEND`")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NoiseError(f"{p}: not a readable JSON calibration snapshot ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise NoiseError(f"{p}: not a calibration snapshot (format is not '{SNAPSHOT_FORMAT}'); "
                         "write one with `qfl noise snapshot BACKEND`")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise NoiseError(f"{p}: calibration snapshot lacks {', '.join(missing)}; write it again")
    if len(data["qubits"]) != data["num_qubits"]:
        raise NoiseError(f"{p}: {len(data['qubits'])} qubit entries for num_qubits = {data['num_qubits']}")
    return data


def calibration_summary(calibration: dict[str, Any]) -> dict[str, Any]:
    """Qubit count, median 1q / 2q / readout errors, median T1 / T2 (seconds) and calibration time."""

    def med(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return float(statistics.median(kept)) if kept else None

    one, two, readout = [], [], []
    for name, rows in calibration["instructions"].items():
        for row in rows:
            if name == "measure":
                readout.append(row["error"])
            elif name not in _NOT_GATES and len(row["qubits"]) == 1:
                one.append(row["error"])
            elif len(row["qubits"]) == 2:
                two.append(row["error"])
    return {
        "backend": calibration["backend"],
        "num_qubits": calibration["num_qubits"],
        "median_1q_error": med(one),
        "median_2q_error": med(two),
        "median_readout_error": med(readout),
        "median_t1_s": med([q["t1"] for q in calibration["qubits"]]),
        "median_t2_s": med([q["t2"] for q in calibration["qubits"]]),
        "calibration_time": calibration.get("calibration_time"),
    }


def _json_text(obj: Any, depth: int = 0) -> str:
    """JSON with one line per qubit, per gate entry and per edge (readable, diffable; floats stay exact)."""
    expand = (isinstance(obj, dict) and depth <= 1) or (
        isinstance(obj, list) and depth <= 2 and any(isinstance(v, (dict, list)) for v in obj))
    if not expand or not obj:
        return json.dumps(obj)
    pad = "  " * (depth + 1)
    if isinstance(obj, dict):
        body = ",\n".join(f"{pad}{json.dumps(k)}: {_json_text(v, depth + 1)}" for k, v in obj.items())
        return "{\n" + body + "\n" + "  " * depth + "}"
    body = ",\n".join(pad + _json_text(v, depth + 1) for v in obj)
    return "[\n" + body + "\n" + "  " * depth + "]"


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _versions() -> dict[str, str]:
    out = {}
    for dist in _VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out
