"""Base class for specs: frozen pydantic models, unknown keys rejected, TOML load, content-hash id."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from qfl_qiskit.errors import SpecError

T = TypeVar("T")


class Spec(BaseModel):
    """A frozen, strict spec. Its ``spec_id`` is a hash of its canonical JSON, so equal content gives equal ids."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    @property
    def spec_id(self) -> str:
        """Twelve hex digits of the SHA-256 of the canonical JSON (sorted keys, all fields incl. defaults)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def to_json(self) -> str:
        """Canonical JSON text of the spec (round-trips through :meth:`model_validate_json`)."""
        return self.model_dump_json()


def format_validation_error(err: ValidationError, *, source: str) -> str:
    """One line naming the first bad field, what is wrong with it, and the value given.

    Args:
        err: The pydantic error.
        source: Where the data came from (a file name), for the message.

    Returns:
        A single-line message.
    """
    first = err.errors()[0]
    loc = ".".join(str(part) for part in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{loc}'; remove it or check its spelling"
    if first["type"] == "missing":
        return f"{source}: missing required key '{loc}'"
    given = first.get("input")
    given_txt = "" if isinstance(given, dict) else f" (got {given!r})"
    more = f" (+{err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    return f"{source}: {loc}: {msg}{given_txt}{more}"


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, raising :class:`SpecError` with one clear line on a missing file or bad syntax.

    Args:
        path: The TOML file.

    Returns:
        The parsed table.

    Raises:
        SpecError: The file is missing, unreadable, or not valid TOML.
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"spec file not found: {p}; give the path of an existing .toml file")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{p}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{p}: cannot read: {exc}") from None


def validate(model: Any, data: Any, *, source: str) -> Any:
    """Validate ``data`` against a model or annotated type, turning errors into :class:`SpecError`.

    Args:
        model: A pydantic model class or any type ``TypeAdapter`` accepts (e.g. a discriminated union).
        data: The raw data.
        source: Where the data came from, for the message.

    Returns:
        The validated object.

    Raises:
        SpecError: The data does not fit the model.
    """
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source=source)) from None


def load_by_kind(path: str | Path, models: dict[str, type[T]]) -> T:
    """Load a TOML spec whose top-level ``kind`` names one of ``models``, validated against that model.

    Validating against the chosen model (not a union) keeps error paths free of the union tag.

    Raises:
        SpecError: Missing file, bad TOML, missing or unknown kind, unknown keys, or invalid values (one line).
    """
    data = read_toml(path)
    kind = data.get("kind")
    if kind not in models:
        got = "missing key 'kind'" if kind is None else f"unknown kind {kind!r}"
        choices = " or ".join(f'kind = "{k}"' for k in models)
        raise SpecError(f"{path}: {got}; set {choices}")
    return validate(models[kind], data, source=str(path))
