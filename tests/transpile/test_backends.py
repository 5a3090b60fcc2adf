from __future__ import annotations

import sys
import types

import pytest

from qfl_qiskit.errors import BackendError
from qfl_qiskit.transpile import fake_backend_classes, median_errors, resolve_backend
from qfl_qiskit.transpile.backends import _snake


def test_fake_backends_are_discovered_by_snake_case_name():
    names = fake_backend_classes()
    for expected in ("fake_torino", "fake_fez", "fake_sherbrooke", "fake_manila"):
        assert expected in names
    assert _snake("FakeSherbrooke") == "fake_sherbrooke"
    assert _snake("FakeManilaV2") == "fake_manila"
    assert all(n.startswith("fake_") and n == n.lower() for n in names)


def test_resolve_fake_and_generic():
    torino = resolve_backend("fake_torino")
    assert torino.num_qubits == 133 and "cz" in torino.operation_names
    assert resolve_backend("fake_torino") is torino  # cached
    gen = resolve_backend("generic_7")
    assert gen.num_qubits == 7


def test_unknown_fake_backend_lists_close_names():
    with pytest.raises(BackendError, match="unknown backend 'fake_torin'; did you mean fake_torino"):
        resolve_backend("fake_torin")


def test_generic_needs_a_qubit():
    with pytest.raises(BackendError, match="at least 1 qubit"):
        resolve_backend("generic_0")


def _fake_runtime(monkeypatch, service_cls):
    module = types.ModuleType("qiskit_ibm_runtime")
    module.QiskitRuntimeService = service_cls
    import qiskit_ibm_runtime

    for attr in ("fake_provider",):
        setattr(module, attr, getattr(qiskit_ibm_runtime, attr))
    monkeypatch.setitem(sys.modules, "qiskit_ibm_runtime", module)
    resolve_backend.cache_clear()


def test_real_backend_without_account_says_how_to_add_one(monkeypatch):
    class NoAccount:
        def __init__(self):
            raise RuntimeError("no account")  # what the service does without a saved account

    _fake_runtime(monkeypatch, NoAccount)
    with pytest.raises(BackendError, match="no IBM Quantum account.*QISKIT_IBM_TOKEN"):
        resolve_backend("ibm_torino")
    resolve_backend.cache_clear()


def test_no_account_is_refused_without_creating_an_account_file(tmp_path, monkeypatch):
    from qiskit_ibm_runtime.accounts import management

    account_file = tmp_path / ".qiskit" / "qiskit-ibm.json"
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(account_file))
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    resolve_backend.cache_clear()
    with pytest.raises(BackendError, match="no IBM Quantum account"):
        resolve_backend("ibm_somewhere")
    assert not account_file.exists() and not account_file.parent.exists()
    resolve_backend.cache_clear()


def test_a_set_but_unusable_token_is_not_called_missing(monkeypatch):
    class BadToken:
        def __init__(self):
            raise ValueError("invalid token")

    _fake_runtime(monkeypatch, BadToken)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "not-a-valid-token")
    with pytest.raises(BackendError, match="from QISKIT_IBM_TOKEN could not be used") as info:
        resolve_backend("ibm_torino")
    assert "no IBM Quantum account" not in str(info.value) and "not-a-valid-token" not in str(info.value)
    resolve_backend.cache_clear()


def test_real_backend_through_the_service(monkeypatch):
    sentinel = resolve_backend("fake_manila")

    class Service:
        def backend(self, name):
            if name != "ibm_test":
                raise KeyError(name)
            return sentinel

        def backends(self):
            return [types.SimpleNamespace(name="ibm_test"), types.SimpleNamespace(name="ibm_kingston")]

    _fake_runtime(monkeypatch, Service)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "a-token")  # an account in the environment: the service is asked
    assert resolve_backend("ibm_test") is sentinel
    with pytest.raises(BackendError, match="did you mean ibm_kingston"):
        resolve_backend("ibm_kingstn")
    resolve_backend.cache_clear()


def test_median_errors_are_in_range():
    med = median_errors(resolve_backend("fake_fez"))
    assert 0 < med["median_1q_error"] < med["median_2q_error"] < 0.1
    assert 0 < med["median_readout_error"] < 0.2
