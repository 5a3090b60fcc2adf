"""Resolve backends by name: offline fake backends, generic backends, and IBM devices through an account.

- ``fake_<device>``: every BackendV2 class in ``qiskit_ibm_runtime.fake_provider`` (e.g. ``fake_torino``),
  discovered from the module, so the list follows the installed qiskit-ibm-runtime with no hand-kept registry.
- ``generic_<n>``: ``GenericBackendV2`` with n qubits, a fixed seed for reproducible error values.
- anything else: a real backend through ``QiskitRuntimeService()`` when an account is saved or set in the
  environment (``QISKIT_IBM_TOKEN``); the token is never read or stored by this toolkit.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from typing import TYPE_CHECKING

from qfl_qiskit.errors import BackendError

if TYPE_CHECKING:
    from qiskit.providers import BackendV2

GENERIC_SEED = 42
_GENERIC = re.compile(r"^generic_(\d+)$")


def _snake(class_name: str) -> str:
    base = class_name.removesuffix("V2")
    return "fake_" + re.sub(r"(?<!^)(?=[A-Z])", "_", base.removeprefix("Fake")).lower()


@cache
def fake_backend_classes() -> dict[str, type]:
    """Map ``fake_<device>`` names to the fake BackendV2 classes of the installed qiskit-ibm-runtime."""
    from qiskit.providers import BackendV2
    from qiskit_ibm_runtime import fake_provider

    out: dict[str, type] = {}
    for attr in dir(fake_provider):
        obj = getattr(fake_provider, attr)
        if attr.startswith("Fake") and isinstance(obj, type) and issubclass(obj, BackendV2):
            out[_snake(attr)] = obj
    return dict(sorted(out.items()))


def offline_backend_names() -> list[str]:
    """Names that resolve without an account (fake backends; ``generic_<n>`` is accepted for any n >= 1)."""
    return list(fake_backend_classes())


@cache
def resolve_backend(name: str) -> BackendV2:
    """Return the backend called ``name`` (cached: building a fake backend's target costs ~0.3 s).

    Args:
        name: ``fake_<device>``, ``generic_<n>``, or an IBM backend name.

    Returns:
        A ``BackendV2``.

    Raises:
        BackendError: Unknown name (the message lists close names) or no IBM account for a real device.
    """
    fakes = fake_backend_classes()
    if name in fakes:
        return fakes[name]()
    match = _GENERIC.match(name)
    if match:
        from qfl_qiskit.limits import check_backend_name

        n = int(match.group(1))
        if n < 1:
            raise BackendError(f"{name}: a generic backend needs at least 1 qubit")
        too_large = check_backend_name(name)
        if too_large:
            raise BackendError(too_large)
        from qiskit.providers.fake_provider import GenericBackendV2

        return GenericBackendV2(num_qubits=n, seed=GENERIC_SEED)
    if name.startswith("fake_"):
        raise BackendError(_unknown(name, list(fakes)))
    return _ibm_backend(name)


def _unknown(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "run `qfl backends` to list them"
    return f"unknown backend '{name}'; {hint}"


def account_available() -> bool:
    """Whether a Qiskit account is set in the environment or saved in the standard account file.

    Checked before constructing ``QiskitRuntimeService``, which otherwise creates an empty
    ``~/.qiskit/qiskit-ibm.json`` when there is no account (seen with qiskit-ibm-runtime 0.51).
    """
    import os

    if os.environ.get("QISKIT_IBM_TOKEN"):
        return True
    from qiskit_ibm_runtime.accounts import management

    path = management._DEFAULT_ACCOUNT_CONFIG_JSON_FILE
    try:
        return os.path.getsize(path) > 2  # "{}" is what the service itself leaves behind: no account
    except OSError:
        return False


def _ibm_backend(name: str) -> BackendV2:
    """A real IBM backend through the saved Qiskit account or the QISKIT_IBM_* environment variables."""
    import os

    offline = offline_backend_names()
    if not account_available():
        raise BackendError(
            f"{_unknown(name, offline)} (no IBM Quantum account available for real devices: "
            "save one with QiskitRuntimeService.save_account or set QISKIT_IBM_TOKEN)")
    from qiskit_ibm_runtime import QiskitRuntimeService

    try:
        service = QiskitRuntimeService()
    except Exception as exc:  # the service raises several types for a missing or bad account
        source = "QISKIT_IBM_TOKEN" if os.environ.get("QISKIT_IBM_TOKEN") else "the saved Qiskit account"
        raise BackendError(
            f"{_unknown(name, offline)} (the IBM Quantum account from {source} could not be used: "
            f"{type(exc).__name__}; check the token, instance and network)") from None
    try:
        return service.backend(name)
    except Exception:
        known = [b.name for b in service.backends()] + offline_backend_names()
        raise BackendError(_unknown(name, known)) from None
