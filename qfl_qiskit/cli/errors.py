"""The one place where the ``qfl`` command turns an exception into one line on stderr and an exit code.

- :class:`~qfl_qiskit.errors.QflError` (bad input the user can fix): its message, exit 2.
- ``OSError`` (a folder that is a file, read-only, full disk, missing file): the file, the system's reason and
  what to do, exit 2; atomic and staged writes have already removed their partial files.
- ``MemoryError``: what to shrink, exit 2 (sizes that cannot fit are refused earlier, by the specs' limits).
- pydantic ``ValidationError`` and the libraries' input errors (qiskit, numpy/pickle/JSON decoding): one line,
  exit 2.
- anything else is a bug of ours: one line naming it as an internal error, exit 1; ``QFL_DEBUG=1`` shows the
  traceback.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

from qfl_qiskit.errors import QflError

_OS_HINTS = {
    errno.ENOSPC: "free disk space, then run the command again (add --resume where the command has it)",
    errno.EDQUOT: "free disk space, then run the command again (add --resume where the command has it)",
    errno.EROFS: "choose a writable folder",
    errno.EACCES: "choose a folder you can write, or fix its permissions",
    errno.EPERM: "choose a folder you can write, or fix its permissions",
    errno.ENOTDIR: "give a folder path, not a file",
    errno.EISDIR: "give a file path, not a folder",
    errno.EEXIST: "remove it or choose another path",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "use a shorter path",
}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message (without the ``error:`` prefix) and exit code for ``exc``."""
    if isinstance(exc, QflError):  # a subclass may name its own code (e.g. 130 for an interrupted run)
        return _one_line(str(exc)), int(getattr(exc, "exit_code", 2))
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)):
        return ("out of memory: the run does not fit this machine; use fewer qubits, samples, bindings or seeds, "
                "or a smaller batch_size"), 2
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        if exc.filename2 is not None:
            where = f"{where} -> {exc.filename2}"
        reason = exc.strerror or str(exc)
        hint = _OS_HINTS.get(exc.errno or -1, "check the path and its permissions")
        return _one_line(f"{where + ': ' if where else ''}{reason}; {hint}"), 2
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        from qfl_qiskit.specs.base import format_validation_error

        return _one_line(format_validation_error(exc, source=exc.title)), 2
    library = _library_input_error(exc)
    if library is not None:
        return _one_line(library), 2
    return _one_line(f"internal error ({type(exc).__name__}: {exc}); run again with QFL_DEBUG=1 for the "
                     "traceback and report it"), 1


def _library_input_error(exc: BaseException) -> str | None:
    import json
    import pickle

    if isinstance(exc, (pickle.UnpicklingError, json.JSONDecodeError, UnicodeDecodeError)):
        return f"cannot read a file: {type(exc).__name__}: {exc}"
    qiskit_error = sys.modules.get("qiskit.exceptions")
    if qiskit_error is not None and isinstance(exc, qiskit_error.QiskitError):
        return f"qiskit refused the input: {exc}"
    return None


def report(exc: BaseException) -> int:
    """Print ``error: <one line>`` on stderr (plus the traceback when ``QFL_DEBUG=1``); return the exit code."""
    message, code = describe(exc)
    if os.environ.get("QFL_DEBUG") == "1":
        traceback.print_exception(exc, file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)
    return code
