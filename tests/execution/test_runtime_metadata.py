"""Runtime's result metadata in every shape its options give (local testing mode on fake_manila): the adapter
reads shots from each (a dict, or under ZNE a list per noise factor) instead of crashing after the job has run."""

from __future__ import annotations

import numpy as np
import pytest

from qfl_qiskit.circuits import build_qfl
from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution import RuntimeEstimator, estimate
from qfl_qiskit.execution.runtime import executor_shots
from qfl_qiskit.specs import QFLSpec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

CONFIGS = {
    "level-0": ({"resilience_level": 0}, int),
    "level-1-trex": ({"resilience_level": 1}, int),
    "level-2-zne": ({"resilience_level": 2}, list),
    "zne-gate-folding": ({"resilience": {"zne_mitigation": True, "zne": {"amplifier": "gate_folding"}}}, list),
    "twirling": ({"resilience_level": 0, "twirling": {"enable_gates": True, "enable_measure": True}}, int),
    "dynamical-decoupling": ({"resilience_level": 0,
                              "dynamical_decoupling": {"enable": True, "sequence_type": "XX"}}, int),
}


@pytest.fixture(scope="module")
def case():
    qnn = build_qfl(QFLSpec(modalities=2, features=1, degree=1, observables=2))
    return qnn, np.random.default_rng(0).uniform(-1, 1, (2, qnn.circuit.num_parameters))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_each_resilience_setting_runs_and_records_its_shots(name, case):
    qnn, values = case
    options, shots_type = CONFIGS[name]
    est = RuntimeEstimator("fake_manila", precision=0.1, seed=1, options=options)
    [res] = estimate(est, [(qnn.circuit, qnn.observables, values)])
    assert res.evs.shape == (2, 2) and np.all(np.isfinite(res.evs))
    assert isinstance(res.metadata["shots"], shots_type) and res.metadata["job_id"] == est.last_job_ids[0]
    if shots_type is list:
        assert len(res.metadata["shots"]) >= 2 and all(isinstance(s, int) for s in res.metadata["shots"])


def test_pea_without_a_noise_model_is_one_clear_error(case):
    qnn, values = case
    est = RuntimeEstimator("fake_manila", precision=0.1, options={
        "resilience": {"zne_mitigation": True, "zne": {"amplifier": "pea"}}})
    with pytest.raises(ExecutionError, match="layer_noise_model"):
        estimate(est, [(qnn.circuit, qnn.observables, values)])


def test_executor_shots_reads_every_metadata_shape():
    assert executor_shots({"executor": {"shots": 64}}) == 64
    assert executor_shots({"executor": [{"shots": 64}, {"shots": 128}]}) == [64, 128]
    assert executor_shots({"executor": None}) is None and executor_shots(None) is None


def test_records_state_the_resolved_options_including_the_default_level():
    default = RuntimeEstimator("fake_manila").describe()["runtime_options"]
    level0 = RuntimeEstimator("fake_manila", options={"resilience_level": 0}).describe()["runtime_options"]
    # Runtime's default resilience level turns measurement twirling on; level 0 does not: the record says which
    assert default["twirling"]["enable_measure"] is True
    assert level0["twirling"]["enable_measure"] is False
