"""Atomic file writes, used by every layer that writes: a reader sees the old file or the new one, never half.

- :func:`atomic_write_bytes` (and the text / JSON forms) for one file;
- :class:`Stage` for a set of files that belong together (a circuit's QPY + QASM + drawing, a report's ISA
  circuits + record + plot): all of them are written, or none is and no folder is left behind;
- :func:`require_writable_dir` to refuse an output folder that cannot be written before any work is done.

JSON is written strictly (``allow_nan=False``): NaN and infinities become ``null``, so every record is valid JSON
for any reader (``float('nan')`` is not JSON). Layer-neutral (like ``errors``): it depends on nothing else.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from qfl_qiskit.errors import QflError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _missing_dirs(folder: Path) -> list[Path]:
    """Folders to create (outermost first) so that ``folder`` exists; raises if an ancestor is not a folder."""
    missing: list[Path] = []
    p = folder
    while not p.exists():
        if p.is_symlink():  # a dangling link
            raise NotADirectoryError(errno.ENOTDIR, "is a broken symbolic link, not a folder", str(p))
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", str(p))
    return missing[::-1]


def _write_temp(path: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would (0666 less the umask)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file in the same folder, fsync it, then rename it over ``path``.

    Folders that had to be created for it are removed again if the write fails.
    """
    path = Path(path)
    Stage().add(path, data).commit()
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_text(payload: Any) -> str:
    """Strict JSON text (indented, keys in insertion order, trailing newline); NaN and infinities become null."""
    try:
        return json.dumps(payload, indent=2, allow_nan=False) + "\n"
    except ValueError:  # a non-finite float somewhere: write null for it (strict JSON has no NaN)
        return json.dumps(_finite(payload), indent=2, allow_nan=False) + "\n"


def atomic_write_json(path: str | Path, payload: Any) -> Path:
    """Atomically write strict JSON (see :func:`json_text`)."""
    return atomic_write_text(path, json_text(payload))


class Stage:
    """A set of files written all together or not at all.

    ``add`` only collects; ``commit`` creates the missing folders, writes every file to a temporary file beside
    its target, then renames them into place. If anything fails (a folder that is a file, a read-only or full
    disk), the temporary files, the new files already renamed and the folders it created are removed, and the
    error is raised: nothing half-written stays behind. Files that existed before are only ever replaced whole.
    """

    def __init__(self) -> None:
        self._files: dict[Path, bytes] = {}

    def add(self, path: str | Path, data: bytes | str, *, first: bool = False) -> Stage:
        """Queue ``data`` (bytes, or text written as UTF-8) for ``path``; ``first`` puts it in place before the
        others (e.g. a record before its artifacts, so that an artifact is never without its record)."""
        path = Path(path)
        blob = data.encode("utf-8") if isinstance(data, str) else data
        if first:
            self._files = {path: blob, **{k: v for k, v in self._files.items() if k != path}}
        else:
            self._files[path] = blob
        return self

    def add_json(self, path: str | Path, payload: Any) -> Stage:
        """Queue strict JSON (see :func:`json_text`)."""
        return self.add(path, json_text(payload))

    @property
    def paths(self) -> list[Path]:
        return list(self._files)

    def commit(self) -> list[Path]:
        """Write every queued file; all or nothing. Returns the paths written."""
        created: list[Path] = []
        temps: list[tuple[str, Path]] = []
        placed: list[Path] = []
        existed = {p for p in self._files if p.exists()}
        try:
            for path in self._files:
                for folder in _missing_dirs(path.parent):
                    folder.mkdir()
                    created.append(folder)
            for path, data in self._files.items():
                temps.append((_write_temp(path, data), path))
            for tmp, path in temps:
                os.replace(tmp, path)
                placed.append(path)
        except BaseException:
            for tmp, _ in temps:
                Path(tmp).unlink(missing_ok=True)
            for path in placed:
                if path not in existed:
                    path.unlink(missing_ok=True)
            for folder in reversed(created):
                try:
                    folder.rmdir()
                except OSError:
                    pass
            raise
        return list(self._files)


def require_writable_dir(path: str | Path, *, what: str) -> Path:
    """Refuse, before any work, an output folder that is a file or cannot be written (one clear line).

    The folder need not exist: its nearest existing ancestor must be a writable folder (nothing is created).

    Args:
        path: The output folder.
        what: How the user named it, for the message (e.g. ``"--results-dir"``).

    Raises:
        QflError: The folder (or an ancestor) is a file, or is not writable.
    """
    path = Path(path)
    try:
        missing = _missing_dirs(path)
    except NotADirectoryError as exc:
        raise QflError(f"{what} {path}: {exc.filename} {exc.strerror}; give a folder path") from None
    existing = missing[0].parent if missing else path
    if not os.access(existing, os.W_OK | os.X_OK):
        raise QflError(f"{what} {path}: {existing} is not writable (read-only or no permission); "
                       "choose a writable folder")
    return path


def require_writable_file(path: str | Path, *, what: str) -> Path:
    """Refuse an output file path whose folder cannot be written, or that names an existing folder."""
    path = Path(path)
    if path.is_dir():
        raise QflError(f"{what} {path}: is a folder; give a file name")
    require_writable_dir(path.parent, what=what)
    return path
