"""The quickstart's trained QFL under fake_torino's calibration noise, transpiled with the preset and with the native
strategy: test accuracy and the mean absolute error of the QFL's expectation values against the exact ones.

Run after `make quickstart`: `.venv/bin/python benchmarks/native_noise.py [RUN_FOLDER] [--backend fake_torino]`.
Both use Aer with the backend's calibration noise and 2000 shots per Pauli setting (seed 0), as the quickstart.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    warnings.filterwarnings("ignore")
    from qfl_qiskit.execution import AerEstimator, ExactEstimator, estimate
    from qfl_qiskit.execution.base import layout_observables
    from qfl_qiskit.specs.noise import BackendNoiseSpec
    from qfl_qiskit.training.experiment import load_model, prepare_data
    from qfl_qiskit.training.hardware import _forward, _Recording
    from qfl_qiskit.training.noisy import evaluate_noisy
    from qfl_qiskit.transpile import resolve_backend, transpile_sweep

    parser = argparse.ArgumentParser()
    parser.add_argument("run", nargs="?", default="results/quickstart/qfl")
    parser.add_argument("--backend", default="fake_torino")
    parser.add_argument("--shots", type=int, default=2000)
    args = parser.parse_args()
    model, saved = load_model(Path(args.run) / "model.pt")
    splits = prepare_data(saved["spec"])
    rec = _Recording()
    _forward(model, rec, splits.test)  # the QFL's PUBs on the test split, exactly as the model evaluates them
    (circuit, observables, values), = rec.pubs
    exact = estimate(ExactEstimator(), [(circuit, observables, values)])[0].evs
    backend = resolve_backend(args.backend)
    noisy = AerEstimator(noise=BackendNoiseSpec(backend=args.backend), shots=args.shots, seed=0)
    print(f"{args.run} on {args.backend}, {len(values)} test samples, {args.shots} shots")
    print(f"{'strategy':9s} {'2q':>4s} {'ESP':>7s} {'accuracy':>9s} {'mean |ev error|':>16s}")
    for strategy in ("preset", "native"):
        isa, report = transpile_sweep(circuit, backend, seeds=4, strategy=strategy if strategy == "preset" else "all")
        evs = estimate(noisy, [(isa, layout_observables(isa, observables), values)])[0].evs
        err = float(np.mean(np.abs(evs - exact)))
        out = evaluate_noisy(model, splits.test, num_classes=splits.num_classes, backend=args.backend,
                             shots=args.shots, seed=0, transpile_seeds=4,
                             strategy=strategy if strategy == "preset" else "all")
        kept = out["transpile"][0]["strategy"]
        print(f"{kept:9s} {report.two_qubit_count:4d} {report.esp:7.4f} {out['noisy']['accuracy']:9.3f} {err:16.4f}")
    print(f"exact accuracy {out['exact']['accuracy']:.3f}")


if __name__ == "__main__":
    main()
