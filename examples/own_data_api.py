"""Train fusion models on your own multimodal data from Python: make a data file, build a spec, prepare the data,
train, read the results, reload the model. Run it from anywhere: ``python examples/own_data_api.py [OUT_DIR]``
(default: a temporary folder). It takes 10 to 20 s on 2 cores.

The data: scikit-learn's breast-cancer set as three views of the ten cell-nucleus features: their means, their
standard errors and their worst values (569 samples, 2 classes).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np


def main(out: Path) -> dict:
    from qfl_qiskit.cli.data import breast_cancer_views
    from qfl_qiskit.specs.train import TrainSpec
    from qfl_qiskit.training import load_model, predict_proba, prepare_data, train_models

    out.mkdir(parents=True, exist_ok=True)
    # 1. a data file: one 2-D array per modality (samples x features) and y (integer or string labels)
    np.savez(out / "views.npz", **breast_cancer_views())

    # 2. a spec, built in code (or load_train_spec("spec.toml"): the same fields as the TOML file). A path given
    # in code is used as it is; in a TOML file it is relative to the file.
    spec = TrainSpec(
        name="breast_cancer_api", seed=0,
        data={"name": "npz", "options": {"path": str(out / "views.npz")}},
        # features = D: each modality's raw width (10 here) is mapped by a trainable encoder to D values, so the
        # QFL loads M x D = 3 x 2 values (3 index qubits + 1 value qubit) whatever the raw widths are
        models=[{"name": "qfl", "features": 2, "degree": 2, "observables": 8},
                {"name": "concat", "features": 2}],
        optim={"epochs": 8, "batch_size": 32, "lr": 0.02},
    )

    # 3. the data as every model sees it: stratified split by the seed, standardised on the training part
    splits = prepare_data(spec)
    print("modalities", dict(zip(splits.names, splits.dims)), "samples", splits.sizes)

    # 4. train every model; the comparison record is returned and written to out/<name>/comparison.json
    record = train_models(spec, out_dir=out, splits=splits)
    for row in record["payload"]["models"]:
        print(f"{row['label']:8s} test accuracy {row['test']['accuracy']:.3f}  "
              f"fusion parameters {row['fusion_parameters']}")
    print("data file sha256", record["data"]["files"][0]["sha256"][:12])

    # 5. reload a trained model (an nn.Module; its state_dict is in model.pt) and predict
    model, saved = load_model(out / spec.name / "qfl" / "model.pt")
    proba = predict_proba(model, splits.test)
    print("QFL test probabilities", proba.shape)
    return record


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="qfl_api_")))
