"""Exported circuits come with a JSON sidecar that loads them back into the same QnnCircuit (QPY and QASM 3,
logical and ISA); the block-level drawing."""

from __future__ import annotations

import numpy as np
import pytest

from qfl_qiskit.circuits import build_mma, build_qfl, export_circuit, load_qnn, sidecar
from qfl_qiskit.errors import DataError
from qfl_qiskit.execution import ExactEstimator, estimate
from qfl_qiskit.specs import MMASpec, QFLSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _evs(qnn, values):
    return estimate(ExactEstimator(), [(qnn.circuit, qnn.observables, values)])[0].evs


@pytest.mark.parametrize("suffix", [".qpy", ".qasm"])
@pytest.mark.parametrize("spec", [QFLSpec(modalities=2, features=2, degree=2), MMASpec(modalities=2)],
                         ids=["qfl", "mma"])
def test_a_round_trip_gives_the_same_parameters_observables_and_values(spec, suffix, tmp_path):
    qnn = build_qfl(spec) if spec.kind == "qfl" else build_mma(spec, (True, False))
    export_circuit(qnn.circuit, tmp_path / "c", meta=sidecar(qnn, spec=spec))
    back = load_qnn(tmp_path / f"c{suffix}")
    assert [p.name for p in back.inputs] == [p.name for p in qnn.inputs]  # x[0], not QASM's _x_0_
    assert [p.name for p in back.weights] == [p.name for p in qnn.weights]
    assert {p.name for p in back.circuit.parameters} == {p.name for p in qnn.circuit.parameters}
    assert [o.paulis[0].to_label() for o in back.observables] == qnn.metadata["observables"]
    assert back.metadata["spec_id"] == spec.spec_id
    values = np.random.default_rng(0).uniform(-np.pi, np.pi, (3, qnn.circuit.num_parameters))
    np.testing.assert_allclose(_evs(back, values), _evs(qnn, values), atol=1e-10)


def test_an_isa_circuit_loads_with_its_observables_laid_out(tmp_path):
    from qfl_qiskit.transpile import resolve_backend, transpile_sweep

    spec = QFLSpec(modalities=2, features=1, degree=1)
    qnn = build_qfl(spec)
    isa, _ = transpile_sweep(qnn.circuit, resolve_backend("fake_manila"), seeds=1)
    export_circuit(isa, tmp_path / "isa", meta=sidecar(qnn, isa, spec=spec))
    back = load_qnn(tmp_path / "isa.qpy")
    assert back.observables[0].num_qubits == 5
    values = np.random.default_rng(1).uniform(-np.pi, np.pi, (2, qnn.circuit.num_parameters))
    np.testing.assert_allclose(_evs(back, values), _evs(qnn, values), atol=1e-9)


def test_a_missing_sidecar_is_one_clear_error(tmp_path):
    qnn = build_qfl(QFLSpec(modalities=1, features=1, degree=1))
    export_circuit(qnn.circuit, tmp_path / "c")
    with pytest.raises(DataError, match="sidecar"):
        load_qnn(tmp_path / "c.qpy")


def test_block_drawing_has_one_box_per_block():
    from qfl_qiskit.circuits.blocks import block_circuit

    spec = QFLSpec(modalities=6, features=2, degree=3)
    names = [i.operation.name for i in block_circuit(build_qfl(spec), spec).data]
    assert names[0] == "H^4" and sum(n.startswith("S(x)") for n in names) == 3
    assert sum(n.startswith("U(θ") for n in names) == 3
    mma = MMASpec(modalities=3)
    names = [i.operation.name for i in block_circuit(build_mma(mma, (True, False, True)), mma).data]
    assert sum("absent" in n for n in names) == 1 and sum(n.startswith("E") for n in names) == 2
