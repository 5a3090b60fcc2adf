"""Base class for specs: frozen pydantic models, unknown keys rejected, TOML load, content-hash id."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from pydantic import AfterValidator, BaseModel, Field, ConfigDict, TypeAdapter, ValidationError, model_validator

from qfl_qiskit.errors import SpecError

T = TypeVar("T")


def _admits(annotation: Any, kind: type) -> bool:
    """Whether ``annotation`` accepts values of ``kind`` as they are (bool or str), not by conversion."""
    if annotation is kind or annotation is Any:
        return True
    if get_origin(annotation) is Literal:
        return any(isinstance(a, kind) for a in get_args(annotation))
    return any(_admits(a, kind) for a in get_args(annotation) if get_origin(annotation) is not Literal)


def _numbers_in(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    return get_origin(annotation) is not Literal and any(_numbers_in(a) for a in get_args(annotation))


def _scalar_misfit(annotation: Any, value: Any) -> str | None:
    """What is wrong when ``value`` holds true/false or a string where ``annotation`` wants a number."""
    for kind, what in ((bool, "true/false"), (str, "a string")):
        if isinstance(value, kind) and _numbers_in(annotation) and not _admits(annotation, kind):
            return f"expected a number, not {what}"
    if annotation is bool and not isinstance(value, bool):  # pydantic would read "yes", "on" or 1 as true
        return "expected true or false"
    if isinstance(value, (list, tuple)):
        items = [a for a in get_args(annotation) if a is not Ellipsis]
        inner = [x for a in items for x in (get_args(a) if get_origin(a) in (tuple, list) else (a,))
                 if x is not Ellipsis]
        for v in value:
            for kind, what in ((bool, "true/false"), (str, "a string")):
                if isinstance(v, kind) and any(_numbers_in(a) or a in (int, float) for a in inner) and not any(
                        _admits(a, kind) for a in inner):
                    return f"expected numbers, not {what}"
    return None


def _backend_name(name: str) -> str:
    from qfl_qiskit.limits import check_backend_name

    why = check_backend_name(name)
    if why:
        raise ValueError(why)
    return name


#: Names that become folder or file names: letters, digits, "_", "." and "-", not starting with "." (so never
#: "." or "..", which would write outside the results folder).
NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"

#: A backend name (``fake_<device>``, ``generic_<n>``, an IBM device); sizes that cannot be built are refused.
BackendName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_backend_name)]


class Spec(BaseModel):
    """A frozen, strict spec. Its ``spec_id`` is a hash of its canonical JSON, so equal content gives equal ids.

    Every spec refuses unknown keys, NaN and infinities in float fields (a NaN would pass every range check and
    then fail much later, or turn into null in a JSON copy), and true/false where a number is due (pydantic
    would otherwise read ``features = true`` as 1).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                why = None if field is None else _scalar_misfit(field.annotation, value)
                if why:
                    raise ValueError(f"{key}: {why} (got {value!r})")
        return data

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
    errors = err.errors()
    first = errors[0]
    # in a union (e.g. float | list[float]) the deepest error of the same field says what is wrong
    prefix = tuple(first["loc"][:-1])
    same = [e for e in errors if tuple(e["loc"][: len(prefix)]) == prefix]
    first = max(same, key=lambda e: len(e["loc"]))
    loc = ".".join(str(part) for part in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{loc}'; remove it or check its spelling"
    if first["type"] == "missing":
        return f"{source}: missing required key '{loc}'"
    given = first.get("input")
    given_txt = "" if isinstance(given, dict) else f" (got {given!r})"
    more = f" (+{err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    if not loc:  # a check across fields: its message names them
        return f"{source}: {msg}{more}"
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
    if not isinstance(kind, str) or kind not in models:
        got = ("missing key 'kind'" if kind is None else f"unknown kind {kind!r}" if isinstance(kind, str)
               else f"kind must be a string, got {kind!r}")
        choices = " or ".join(f'kind = "{k}"' for k in models)
        raise SpecError(f"{path}: {got}; set {choices}")
    return validate(models[kind], data, source=str(path))
