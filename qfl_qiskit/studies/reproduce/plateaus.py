"""``plateaus``: trainability of QFL, at initialisation the variance of a cost's gradient against depth P and
against the number of modalities M (with the qubit count), for a global and a local cost; and during training, the
gradient's size epoch by epoch as M grows.

Barren plateaus: when the gradient's variance over random parameters decays exponentially with the qubit count,
training from a random start is hopeless at scale; a local cost (a one-qubit observable) is known to decay more
slowly than a global one (Z on every qubit) for shallow circuits. The QFL paper lists trainability as P and M grow
as an open question. Each cell draws ``draws`` random weight and input vectors (uniform on [-pi, pi)), computes
the exact gradient of the cost with respect to every weight, and records the variance over draws of each
weight's partial derivative, averaged over weights, with a bootstrap 90% interval over draws. A training cell
trains the bare layer and a linear head on a degree-2 cross-modal task and records the mean square of the full-batch
loss gradient over the circuit's weights after every epoch (:func:`training_gradients`). The noise study's
``[plateau]`` diagnostic is :func:`gradient_variance` too.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

NAME = "plateaus"
CLAIM = ("trainability as P and M grow (open question in the QFL paper): the gradient variance at initialisation "
         "decays with the qubit count, faster for a global cost than for a local one")

#: Settings that only choose which cells exist (left out of the cells' fingerprints).
PLAN_KEYS = ("degrees", "modalities")

def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"features": 1, "fixed_modalities": 4, "degrees": [1, 2, 3], "fixed_degree": 2,
                "modalities": [2, 4, 8], "draws": 256, "bootstrap": 200, "costs": ["local", "global"],
                "training": {"modalities": [2, 6], "degree": 2, "samples": 128, "epochs": 3, "lr": 0.05},
                "seeds": [0]}
    return {"features": 1, "fixed_modalities": 8, "degrees": [1, 2, 3, 4, 5, 6], "fixed_degree": 2,
            "modalities": [2, 4, 8, 16, 32, 64, 128], "draws": 512, "bootstrap": 1000,
            "costs": ["local", "global"],
            "training": {"modalities": [2, 8, 32], "degree": 2, "samples": 400, "epochs": 30, "lr": 0.05},
            "seeds": [0, 1, 2]}


def describe(s: dict[str, Any]) -> str:
    """The setting in one line, for the claims table."""
    return (f"QFL D = {s['features']}: P = {min(s['degrees'])}..{max(s['degrees'])} at M = {s['fixed_modalities']}, "
            f"M = {min(s['modalities'])}..{max(s['modalities'])} at P = {s['fixed_degree']}; {s['draws']} draws, "
            f"local and global cost; training at M = {', '.join(map(str, s['training']['modalities']))}; "
            f"{len(s['seeds'])} seeds")


def plan(settings: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    cells = []
    for s in seeds:
        for cost in settings["costs"]:
            cells += [{"id": f"P{p}-M{settings['fixed_modalities']}-{cost}-seed{s}", "axis": "degree",
                       "degree": p, "modalities": settings["fixed_modalities"], "cost": cost, "seed": s}
                      for p in settings["degrees"]]
            cells += [{"id": f"P{settings['fixed_degree']}-M{m}-{cost}-seed{s}", "axis": "modalities",
                       "degree": settings["fixed_degree"], "modalities": m, "cost": cost, "seed": s}
                      for m in settings["modalities"]]
        t = settings["training"]
        cells += [{"id": f"train-P{t['degree']}-M{m}-seed{s}", "axis": "training", "degree": t["degree"],
                   "modalities": m, "cost": "cross-entropy", "seed": s} for m in t["modalities"]]
    return cells


def cost_observable(kind: str, num_qubits: int) -> Any:
    """``local``: Z on the value qubit (the last); ``global``: Z on every qubit."""
    from qiskit.quantum_info import SparsePauliOp

    qubits = [num_qubits - 1] if kind == "local" else list(range(num_qubits))
    return SparsePauliOp.from_sparse_list([("Z" * len(qubits), qubits, 1.0)], num_qubits)


def gradient_variance(modalities: int, degree: int, *, features: int, draws: int, cost: str, seed: Any,
                      bootstrap: int = 0) -> dict[str, Any]:
    """Variance over ``draws`` random weight and input vectors (uniform on [-pi, pi)) of each weight's exact partial
    derivative of a QFL circuit's cost, averaged over weights (also the first weight's alone), with a bootstrap 90%
    interval over draws when ``bootstrap`` > 0.

    Args:
        cost: ``local`` or ``global`` (:func:`cost_observable`), or ``circuit``: the circuit's own first read-out
            (a random Pauli string).
        seed: Seed (or seed sequence) of the draws.
    """
    import torch

    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.execution import ExactEstimator
    from qfl_qiskit.specs import QFLSpec

    qnn = build_qfl(QFLSpec(modalities=modalities, features=features, degree=degree, observables=1))
    n = qnn.circuit.num_qubits
    rng = np.random.default_rng(seed)
    values = qnn.parameter_values(rng.uniform(-np.pi, np.pi, (draws, qnn.num_inputs)),
                                  rng.uniform(-np.pi, np.pi, (draws, qnn.num_weights)))
    v = torch.tensor(values, requires_grad=True)
    op = qnn.observables[0] if cost == "circuit" else cost_observable(cost, n)
    ExactEstimator().evaluate(qnn.circuit, [op], v).sum().backward()
    order = list(qnn.circuit.parameters)
    cols = [order.index(w) for w in qnn.weights if w in qnn.circuit.parameters]
    g = v.grad[:, cols].numpy()  # (draws, weights): each row one random start
    per_weight = g.var(axis=0, ddof=1)
    out = {"qubits": n, "weights": len(cols), "variance": float(per_weight.mean()),
           "variance_first_weight": float(per_weight[0]), "draws": draws}
    if bootstrap:
        boot = np.random.default_rng(rng.integers(2**63)).integers(0, draws, (bootstrap, draws))
        resampled = np.array([g[idx].var(axis=0, ddof=1).mean() for idx in boot])
        out["ci90"] = [float(q) for q in np.quantile(resampled, [0.05, 0.95])]
    return out


def training_gradients(modalities: int, degree: int, *, features: int, samples: int, epochs: int, lr: float,
                       seed: int) -> dict[str, Any]:
    """Train the bare QFL layer (16 random Pauli observables, linear head, Adam) on a degree-2 cross-modal task and
    record, before training and after every epoch, the mean square of the training loss's full-batch gradient over
    the circuit's weights, and the loss."""
    import torch

    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.data import synthetic_polynomial
    from qfl_qiskit.specs import QFLSpec
    from qfl_qiskit.studies.reproduce.common import bare_model, train_epochs

    data = synthetic_polynomial(num_modalities=modalities, features=features, degree=2, n=samples, seed=seed,
                                terms=2)
    qnn = build_qfl(QFLSpec(modalities=modalities, features=features, degree=degree, observables=16))
    x, y = torch.tensor(np.concatenate(data.modalities, axis=1)), torch.tensor(data.labels)
    model = bare_model(qnn, int(data.num_classes), seed=seed)

    def probe() -> tuple[float, float]:
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        w = model[0].weights.grad
        return float((w**2).mean()), float(loss)

    curve = [probe()]
    train_epochs(model, x, y, rows=len(y), epochs=epochs, batch_size=32, lr=lr, seed=seed,
                 after_epoch=lambda: curve.append(probe()))
    return {"qubits": qnn.circuit.num_qubits, "grad_sq": [g for g, _ in curve], "loss": [l for _, l in curve]}


def run_cell(settings_json: str, cell: dict[str, Any]) -> dict[str, Any]:
    s = json.loads(settings_json)
    if cell["axis"] == "training":
        result = training_gradients(cell["modalities"], cell["degree"], features=s["features"],
                                    samples=s["training"]["samples"], epochs=s["training"]["epochs"],
                                    lr=s["training"]["lr"], seed=cell["seed"])
        return {**cell, "result": result}
    result = gradient_variance(cell["modalities"], cell["degree"], features=s["features"], draws=s["draws"],
                               cost=cell["cost"], seed=[cell["seed"], cell["modalities"], cell["degree"]],
                               bootstrap=s["bootstrap"])
    return {**cell, "result": result}


def summarize(settings: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (axis, value, cost): mean over seeds of the variance, the interval's ends, and the fitted decay rate of
    log variance against the qubit count along the modalities axis."""
    rows, training = [], []
    for m in settings["training"]["modalities"]:
        runs = [c["result"] for c in cells if c["axis"] == "training" and c["modalities"] == m]
        training.append({"modalities": m, "qubits": runs[0]["qubits"],
                         "grad_sq": np.mean([r["grad_sq"] for r in runs], axis=0).tolist(),
                         "loss": np.mean([r["loss"] for r in runs], axis=0).tolist()})
    cells = [c for c in cells if c["axis"] != "training"]
    keys = dict.fromkeys((c["axis"], c["degree"], c["modalities"], c["cost"]) for c in cells)
    for axis, p, m, cost in keys:
        members = [c["result"] for c in cells if (c["axis"], c["degree"], c["modalities"], c["cost"]) ==
                   (axis, p, m, cost)]
        rows.append({"axis": axis, "degree": p, "modalities": m, "cost": cost, "qubits": members[0]["qubits"],
                     "weights": members[0]["weights"], "variance": float(np.mean([r["variance"] for r in members])),
                     "ci90": [float(np.mean([r["ci90"][0] for r in members])),
                              float(np.mean([r["ci90"][1] for r in members]))]})
    slopes = {}
    for cost in settings["costs"]:
        pts = [(r["qubits"], np.log(r["variance"])) for r in rows if r["axis"] == "modalities" and r["cost"] == cost]
        if len({q for q, _ in pts}) >= 2:
            q, lv = np.array(pts).T
            slopes[cost] = float(np.polyfit(q, lv, 1)[0])  # d log Var / d qubits
    return {"rows": rows, "log_variance_per_qubit": slopes, "training": training, "seeds": len(settings["seeds"])}


def verdict(summary: dict[str, Any]) -> dict[str, str]:
    """An open question, so the verdict reports the measured decay: "holds" when the global cost's variance decays
    with the qubit count faster than the local cost's (both fitted slopes negative, global steeper), "does not hold"
    when neither decays, inconclusive otherwise."""
    slopes = summary["log_variance_per_qubit"]
    if "local" not in slopes or "global" not in slopes:
        return {"verdict": "inconclusive", "why": "needs a local and a global cost over two or more qubit counts"}
    text = (f"log-variance per added qubit: local {slopes['local']:+.2f}, global {slopes['global']:+.2f} "
            f"(factor {np.exp(slopes['local']):.2f} and {np.exp(slopes['global']):.2f} per qubit)")
    if summary.get("training"):
        text += "; mean square gradient in training, first -> last epoch: " + ", ".join(
            f"{t['qubits']} qubits {t['grad_sq'][0]:.2g} -> {t['grad_sq'][-1]:.2g}" for t in summary["training"])
    if slopes["global"] < slopes["local"] < 0:
        return {"verdict": "holds", "why": text}
    if slopes["global"] >= 0 and slopes["local"] >= 0:
        return {"verdict": "does not hold", "why": text}
    return {"verdict": "inconclusive", "why": text}
