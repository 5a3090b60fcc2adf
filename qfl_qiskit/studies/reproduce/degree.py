"""``degree``: QFL of depth P against targets of known cross-modal degree.

The QFL paper: expectation values of a depth-P QFL are trigonometric polynomials of degree P across modalities, so
depth P can fit a degree-P cross-modal target and a shallower one cannot. Each cell trains the bare QFL layer (the
features are the rotation angles, no classical encoder that could add frequencies) with a linear head on a
:func:`~qfl_qiskit.data.synthetic_polynomial` task of degree d (the sign of a sum of cosines whose frequency vectors
have L1 norm exactly d, each touching two modalities), and reports held-out accuracy. The cells form a d x P matrix
per seed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

NAME = "degree"
CLAIM = ("QFL expectation values are degree-P trigonometric polynomials across modalities: depth P fits a target "
         "of cross-modal degree P, a depth below it does not; accuracy grows with P")

#: Settings that only choose which cells exist (left out of the cells' fingerprints).
PLAN_KEYS = ("targets", "depths")

def settings(quick: bool) -> dict[str, Any]:
    """Sizes of the experiment: ``quick`` finishes in about a minute on 2 cores."""
    if quick:
        return {"modalities": 2, "features": 1, "targets": [1, 2, 3], "depths": [1, 2, 3], "samples": 400,
                "terms": 2, "observables": 8, "epochs": 25, "batch_size": 32, "lr": 0.05, "seeds": [0, 1]}
    return {"modalities": 2, "features": 2, "targets": [1, 2, 3, 4], "depths": [1, 2, 3, 4, 5], "samples": 1000,
            "terms": 4, "observables": 16, "epochs": 60, "batch_size": 32, "lr": 0.05, "seeds": [0, 1, 2, 3, 4]}


def describe(s: dict[str, Any]) -> str:
    """The setting in one line, for the claims table."""
    return (f"synthetic cross-modal targets of degree {_span(s['targets'])}, {s['modalities']} modalities x "
            f"{s['features']} features, bare QFL layer P = {_span(s['depths'])}, {s['samples']} samples, "
            f"{len(s['seeds'])} seeds")


def _span(values: list[int]) -> str:
    return f"{min(values)}..{max(values)}"


def plan(settings: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    return [{"id": f"d{d}-P{p}-seed{s}", "target": d, "depth": p, "seed": s}
            for s in seeds for d in settings["targets"] for p in settings["depths"]]


def run_cell(settings_json: str, cell: dict[str, Any]) -> dict[str, Any]:
    """Train the depth-``cell['depth']`` QFL layer and a linear head on the degree-``cell['target']`` task."""
    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.data import synthetic_polynomial
    from qfl_qiskit.specs import QFLSpec
    from qfl_qiskit.studies.reproduce.common import train_layer

    s = json.loads(settings_json)
    t0 = time.perf_counter()
    data = synthetic_polynomial(num_modalities=s["modalities"], features=s["features"], degree=cell["target"],
                                n=s["samples"], seed=cell["seed"], terms=s["terms"])
    qnn = build_qfl(QFLSpec(modalities=s["modalities"], features=s["features"], degree=cell["depth"],
                            observables=s["observables"]))
    result = train_layer(qnn, data, epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=cell["seed"])
    return {**cell, "result": {**result, "seconds": time.perf_counter() - t0}}


def summarize(settings: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over seeds of the held-out accuracy, as a targets x depths matrix."""
    targets, depths = settings["targets"], settings["depths"]
    mean = np.zeros((len(targets), len(depths)))
    std = np.zeros_like(mean)
    for i, d in enumerate(targets):
        for j, p in enumerate(depths):
            vals = [c["result"]["test_accuracy"] for c in cells if c["target"] == d and c["depth"] == p]
            mean[i, j] = np.mean(vals)
            std[i, j] = np.std(vals, ddof=1) if len(vals) > 1 else 0.0
    params = {p: next(c["result"]["parameters"] for c in cells if c["depth"] == p) for p in depths}
    return {"targets": targets, "depths": depths, "test_accuracy_mean": mean.tolist(),
            "test_accuracy_std": std.tolist(), "parameters_by_depth": params, "seeds": len(settings["seeds"])}


#: A depth "fits" a target when its held-out accuracy beats the best shallower depth by this much.
MARGIN = 0.10


def verdict(summary: dict[str, Any]) -> dict[str, str]:
    """Holds when, for every target degree d >= 2 with a shallower depth in the grid, depth P = d beats every depth
    below d by at least :data:`MARGIN` and by more than twice the seeds' standard deviation; does not hold when no
    target gains even half the margin; inconclusive otherwise, and with one seed."""
    mean, std = np.array(summary["test_accuracy_mean"]), np.array(summary["test_accuracy_std"])
    targets, depths = summary["targets"], summary["depths"]
    gains = {}
    for i, d in enumerate(targets):
        below = [j for j, p in enumerate(depths) if p < d]
        if d < 2 or d not in depths or not below:
            continue
        j = depths.index(d)
        best = max(below, key=lambda k: mean[i, k])
        gains[d] = (mean[i, j] - mean[i, best], 2 * max(std[i, j], std[i, best]))
    if not gains:
        return {"verdict": "inconclusive", "why": "the grid has no target with a shallower depth"}
    text = "; ".join(f"d={d}: P={d} beats the best P<{d} by {g:+.3f} (2 std {s:.3f})" for d, (g, s) in gains.items())
    if summary["seeds"] < 2:
        return {"verdict": "inconclusive", "why": f"one seed, no spread to judge against; {text}"}
    if all(g >= MARGIN and g > spread for g, spread in gains.values()):
        return {"verdict": "holds", "why": text}
    if all(g < MARGIN / 2 for g, _ in gains.values()):
        return {"verdict": "does not hold", "why": text}
    return {"verdict": "inconclusive", "why": text}
