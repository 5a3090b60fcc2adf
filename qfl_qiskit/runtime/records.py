"""Job records of Runtime submissions: ``runtime_jobs/records/<record_id>.json`` plus artifacts beside it.

Beside each record: ``<id>.qpy`` (the ISA circuits, one per PUB), ``<id>.values.npz`` (parameter values ``pub0``,
``pub1``...), and once known ``<id>.result.json`` (the ``PrimitiveResult`` in qiskit-ibm-runtime's JSON encoding).
Every write is atomic; the status history is append-only (a new entry, then an atomic rewrite of the record). A
record that cannot be parsed is reported and never rewritten. Records hold no credentials.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from qfl_qiskit.atomic import Stage, atomic_write_bytes, atomic_write_json, atomic_write_text, json_text
from qfl_qiskit.errors import ExecutionError

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")


class JobRecordError(ExecutionError):
    """A job record is missing, corrupt, or cannot be used as asked."""


def now() -> str:
    """Current UTC time, ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


def record_path(records_dir: Path, record_id: str) -> Path:
    """Path of a record, refusing ids that are not plain names (no paths)."""
    if not _ID.match(record_id):
        raise JobRecordError(f"'{record_id}' is not a job record id; run `qfl jobs list` to see them")
    return records_dir / f"{record_id}.json"


def artifact(records_dir: Path, record_id: str, suffix: str) -> Path:
    """Path of an artifact beside a record (``suffix`` like ``.qpy``)."""
    return records_dir / f"{record_id}{suffix}"


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def write_circuits(records_dir: Path, record_id: str, circuits: list[Any], *,
                   stage: Stage | None = None) -> tuple[str, str]:
    """Save ISA circuits as QPY beside the record (or add them to ``stage``); returns (file name, SHA-256)."""
    from qiskit import qpy

    buf = io.BytesIO()
    qpy.dump(circuits, buf)
    data = buf.getvalue()
    return _place(artifact(records_dir, record_id, ".qpy"), data, stage), sha256(data)


def read_circuits(records_dir: Path, record: dict[str, Any]) -> list[Any]:
    """Load the ISA circuits of a record, checking the stored hash."""
    from qiskit import qpy

    data = _read_artifact(records_dir, record, record["isa"]["qpy"])
    if sha256(data) != record["isa"]["sha256"]:
        raise JobRecordError(f"{record['isa']['qpy']}: QPY file does not match the hash in its record")
    return list(qpy.load(io.BytesIO(data)))


def write_values(records_dir: Path, record_id: str, values: list[np.ndarray], *,
                 stage: Stage | None = None) -> tuple[str, str]:
    """Save each PUB's parameter values (``pub0``, ``pub1``...) as ``.npz`` (or add them to ``stage``); returns
    (file name, SHA-256)."""
    buf = io.BytesIO()
    np.savez(buf, **{f"pub{i}": np.asarray(v, dtype=float) for i, v in enumerate(values)})
    data = buf.getvalue()
    return _place(artifact(records_dir, record_id, ".values.npz"), data, stage), sha256(data)


def _place(path: Path, data: bytes, stage: Stage | None) -> str:
    """Add ``data`` to ``stage``, or write it now (atomically); returns the file name."""
    if stage is not None:
        stage.add(path, data)
    else:
        atomic_write_bytes(path, data)
    return path.name


def read_values(records_dir: Path, record: dict[str, Any]) -> list[np.ndarray]:
    """Load a record's parameter values, checking the stored hash."""
    data = _read_artifact(records_dir, record, record["values"]["file"])
    if sha256(data) != record["values"]["sha256"]:
        raise JobRecordError(f"{record['values']['file']}: values file does not match the hash in its record")
    with np.load(io.BytesIO(data)) as npz:
        return [npz[f"pub{i}"] for i in range(len(npz.files))]


def write_result(records_dir: Path, record_id: str, text: str) -> str:
    """Save the encoded result beside the record; returns the file name."""
    return atomic_write_text(artifact(records_dir, record_id, ".result.json"), text).name


def read_result_text(records_dir: Path, record: dict[str, Any]) -> str | None:
    """The stored encoded result, or None if none was stored yet."""
    name = record.get("result_file")
    if not name or not (records_dir / name).is_file():
        return None
    return (records_dir / name).read_text(encoding="utf-8")


def _read_artifact(records_dir: Path, record: dict[str, Any], name: str) -> bytes:
    path = records_dir / name
    if not path.is_file():
        raise JobRecordError(f"{path} is missing; record '{record['record_id']}' cannot be recovered without it")
    return path.read_bytes()


def stage_record(stage: Stage, records_dir: Path, record: dict[str, Any]) -> Path:
    """Add a record to ``stage`` (written with its artifacts, all or none)."""
    path = record_path(records_dir, record["record_id"])
    stage.add(path, json_text(record), first=True)
    return path


def save(records_dir: Path, record: dict[str, Any]) -> Path:
    """Write a record atomically."""
    return atomic_write_json(record_path(records_dir, record["record_id"]), record)


def load(records_dir: Path, record_id: str) -> dict[str, Any]:
    """Read a record.

    Raises:
        JobRecordError: No such record, or a corrupt one (left untouched).
    """
    path = record_path(records_dir, record_id)
    if not path.is_file():
        raise JobRecordError(f"no job record '{record_id}' in {records_dir}; run `qfl jobs list` to see them")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("record_id") != record_id:
            raise ValueError("not a job record")
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobRecordError(f"job record {path} is corrupt ({type(exc).__name__}: {exc}); left untouched") from None
    return record


#: Keys every job record has (written by ``submit``); a record without one is reported as corrupt.
RECORD_KEYS = ("record_id", "backend", "local", "mode", "job_ids", "options", "status", "isa", "values",
               "observables", "specs")


def append_status(records_dir: Path, record: dict[str, Any], status: str, **fields: Any) -> dict[str, Any]:
    """Append a status entry (and set ``fields``) and rewrite the record atomically; returns the new record."""
    entry = {"time": now(), "status": status}
    if fields.get("error"):
        entry["error"] = fields["error"]
    history = [*record.get("status_history", []), entry]
    updated = {**record, **fields, "status": status, "status_history": history}
    save(records_dir, updated)
    return updated


def last_error(record: dict[str, Any]) -> str | None:
    """The error of a record's latest status entry that has one (None if none has)."""
    return next((h["error"] for h in reversed(record.get("status_history", [])) if h.get("error")), None)


def list_records(records_dir: Path) -> list[tuple[str, dict[str, Any] | None]]:
    """Every record id with its record, or None for a corrupt one; newest first."""
    out: list[tuple[str, dict[str, Any] | None]] = []
    if records_dir.exists() and not records_dir.is_dir():
        raise JobRecordError(f"--records-dir {records_dir} is a file, not a folder; give the job records folder")
    if not records_dir.is_dir():
        return out
    for path in sorted(records_dir.glob("*.json"), reverse=True):
        if path.name.endswith(".result.json"):
            continue
        rid = path.stem
        try:
            out.append((rid, load(records_dir, rid)))
        except JobRecordError:
            out.append((rid, None))
    return out
