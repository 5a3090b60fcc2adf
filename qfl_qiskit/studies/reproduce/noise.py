"""``noise``: the accuracy gap between QFL and the best classical fusion as device noise grows, with and without
mitigation.

Per seed, QFL (the toolkit's ``QFLFusion``: linear encoders, D = 2, P = 2, 16 random Pauli observables) and the
classical fusions are trained exactly on UCI Multiple Features (6 views as 6 modalities, 10 digits; 5 qubits), with
the toolkit's loop and early stopping on validation macro-F1. QFL's test predictions are then computed on the
first ``samples`` test rows with its circuits transpiled for fake_torino and simulated under that device's
calibration noise times lambda (exact density-matrix expectation values, no shot noise), through each mitigation;
the classical models, which run on the CPU, are scored on the same rows. The gap is paired per seed: QFL under
noise minus the classical model with the best mean accuracy.
"""

from __future__ import annotations

import copy
import json
import time
from functools import lru_cache
from typing import Any

import numpy as np

NAME = "noise"
CLAIM = ("open question of the QFL paper: robustness to device noise relative to classical fusion (0 to 4x "
         "fake_torino's calibration, with and without mitigation)")
BACKEND = "fake_torino"

#: Settings that only choose which cells exist (left out of the cells' fingerprints).
PLAN_KEYS = ("scales", "mitigations", "classical")

def settings(quick: bool) -> dict[str, Any]:
    if quick:
        s = {"scales": [1.0, 4.0], "mitigations": ["none", "zne"], "classical": ["concat"], "samples": 40,
             "epochs": 6, "seeds": [0, 1]}
    else:
        s = {"scales": [0.0, 0.5, 1.0, 2.0, 3.0, 4.0], "mitigations": ["none", "zne", "rem", "zne+rem"],
             "classical": ["concat", "lmf", "mfb", "gcn", "tfn"], "samples": 300, "epochs": 20,
             "seeds": [0, 1, 2, 3, 4]}
    s.update({"backend": BACKEND, "features": 2, "degree": 2, "observables": 16, "width": 16, "batch_size": 32,
              "lr": 0.02, "patience": 4, "scale_factors": [1.0, 3.0, 5.0]})
    return s


def describe(s: dict[str, Any]) -> str:
    """The setting in one line, for the claims table."""
    return (f"UCI Multiple Features (6 views), QFL P = {s['degree']} on {s['backend']} noise x "
            f"{', '.join(f'{a:g}' for a in s['scales'])}, mitigation {', '.join(s['mitigations'])}, against "
            f"{', '.join(s['classical'])}; {s['samples']} test rows, {len(s['seeds'])} seeds")


def plan(settings: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    cells = [{"id": f"{m}-seed{s}", "kind": "classical", "model": m, "seed": s}
             for s in seeds for m in settings["classical"]]
    cells += [{"id": f"qfl-x{a:g}-{mit}-seed{s}", "kind": "qfl", "scale": a, "mitigation": mit, "seed": s}
              for s in seeds for a in settings["scales"] for mit in settings["mitigations"]]
    return cells


def _spec(label: str, s: dict[str, Any]) -> Any:
    from qfl_qiskit.specs import train as t

    d, w = s["features"], s["width"]
    return {"qfl": lambda: t.QFLModelSpec(features=d, degree=s["degree"], observables=s["observables"]),
            "concat": lambda: t.ConcatModelSpec(features=d, out=w),
            "lmf": lambda: t.LMFModelSpec(features=d, rank=4, out=w),
            "mfb": lambda: t.MFBModelSpec(features=d, factor=4, out=w),
            "gcn": lambda: t.GCNModelSpec(features=d, hidden=w), "tfn": lambda: t.TFNModelSpec(features=d)}[label]()


@lru_cache(maxsize=1)
def _splits(seed: int) -> Any:
    from qfl_qiskit.specs.train import ConcatModelSpec, TrainSpec
    from qfl_qiskit.training import prepare_data

    # the split, standardised on its training part; TrainSpec wants a model, which prepare_data does not use
    return prepare_data(TrainSpec(name="reproduce_noise", seed=seed, data={"name": "uci_mfeat"},
                                  models=[ConcatModelSpec()]))


@lru_cache(maxsize=2)
def _trained(label: str, settings_json: str, seed: int) -> Any:
    """A model trained exactly (cached per worker: every noise cell of a seed evaluates the same QFL)."""
    import torch.nn.functional as F

    from qfl_qiskit.models import build_model
    from qfl_qiskit.training import fit

    s, sp = json.loads(settings_json), _splits(seed)
    model = build_model(_spec(label, s), sp.dims, sp.num_classes, seed=seed)
    fit(model, sp.train, sp.val, num_classes=sp.num_classes, loss_fn=F.cross_entropy, lr=s["lr"],
        epochs=s["epochs"], batch_size=s["batch_size"], patience=s["patience"], monitor="macro_f1", seed=seed)
    return model


def _rows(sp: Any, n: int) -> Any:
    from qfl_qiskit.data.tensors import TensorData

    t = sp.test
    return TensorData([x[:n] for x in t.modalities], t.labels[:n], t.presence[:n])


def run_cell(settings_json: str, cell: dict[str, Any]) -> dict[str, Any]:
    from qfl_qiskit.training import evaluate

    s = json.loads(settings_json)
    t0 = time.perf_counter()
    sp = _splits(cell["seed"])
    rows = _rows(sp, s["samples"])
    if cell["kind"] == "classical":
        model = _trained(cell["model"], settings_json, cell["seed"])
        result = {"accuracy": evaluate(model, rows, num_classes=sp.num_classes)["accuracy"],
                  "full_test_accuracy": evaluate(model, sp.test, num_classes=sp.num_classes)["accuracy"],
                  "fusion_parameters": model.fusion_parameters}
    else:
        from qfl_qiskit.specs import BackendNoiseSpec
        from qfl_qiskit.specs.mitigation import MitigationSpec
        from qfl_qiskit.training.noisy import evaluate_noisy

        model = copy.deepcopy(_trained("qfl", settings_json, cell["seed"]))  # evaluate_noisy keeps its estimator
        mitigation = (None if cell["mitigation"] == "none" else
                      MitigationSpec(techniques=cell["mitigation"], scale_factors=s["scale_factors"]))
        out = evaluate_noisy(model, rows, num_classes=sp.num_classes, backend=s["backend"],
                             noise=BackendNoiseSpec(backend=s["backend"], scale=cell["scale"]), shots=None,
                             seed=cell["seed"], transpile_seeds=2, mitigation=mitigation)
        result = {"accuracy": out["noisy"]["accuracy"], "exact_accuracy": out["exact"]["accuracy"],
                  "backend": out["backend"], "calibration_time": out["calibration_time"],
                  "fusion_parameters": model.fusion_parameters}
    return {**cell, "result": {**result, "samples": len(rows.labels), "seconds": time.perf_counter() - t0}}


def _stats(vals: list[float]) -> tuple[float, float]:
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def summarize(settings: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    seeds = settings["seeds"]
    classical = {m: {c["seed"]: c["result"]["accuracy"] for c in cells if c.get("model") == m}
                 for m in settings["classical"]}
    best = max(classical, key=lambda m: np.mean(list(classical[m].values())))
    rows = []
    for mit in settings["mitigations"]:
        for a in settings["scales"]:
            qfl = {c["seed"]: c["result"]["accuracy"] for c in cells
                   if c["kind"] == "qfl" and c["scale"] == a and c["mitigation"] == mit}
            gaps = [qfl[s] - classical[best][s] for s in seeds]
            (qm, qs), (gm, gs) = _stats([qfl[s] for s in seeds]), _stats(gaps)
            rows.append({"scale": a, "mitigation": mit, "qfl_accuracy_mean": qm, "qfl_accuracy_std": qs,
                         "gap_mean": gm, "gap_std": gs, "gaps": gaps})
    exact = [c["result"]["exact_accuracy"] for c in cells if c["kind"] == "qfl"]
    qcell = next(c for c in cells if c["kind"] == "qfl")
    return {"rows": rows, "best_classical": best,
            "classical": {m: dict(zip(("mean", "std"), _stats(list(v.values())))) for m, v in classical.items()},
            "qfl_exact_mean": float(np.mean(exact)), "samples": settings["samples"], "seeds": len(seeds),
            "backend": qcell["result"]["backend"], "calibration_time": qcell["result"]["calibration_time"]}


def verdict(summary: dict[str, Any]) -> dict[str, str]:
    """"holds" (QFL is robust relative to classical fusion) when, at the device's own calibration (lambda = 1),
    QFL's gap to the best classical fusion without mitigation is within 0.05 of its noiseless gap; "does not hold"
    when even the best mitigation leaves it more than 0.05 below; inconclusive otherwise (or without lambda = 1
    in the grid, or with one seed)."""
    rows = summary["rows"]
    base = summary["qfl_exact_mean"] - summary["classical"][summary["best_classical"]]["mean"]
    top = max(r["scale"] for r in rows)

    def at(scale: float) -> str:
        here = [r for r in rows if r["scale"] == scale]
        plain = next((r for r in here if r["mitigation"] == "none"), None)
        best = max(here, key=lambda r: r["gap_mean"])
        return (f"at {scale:g}x " + (f"unmitigated {plain['gap_mean']:+.3f} ± {plain['gap_std']:.3f}, " if plain
                                     else "") + f"best mitigation ({best['mitigation']}) {best['gap_mean']:+.3f}")

    text = f"noiseless gap to {summary['best_classical']} {base:+.3f}; " + "; ".join(
        at(a) for a in dict.fromkeys(a for a in (1.0, top) if any(r["scale"] == a for r in rows)))
    at1 = [r for r in rows if r["scale"] == 1.0]
    if not at1:
        return {"verdict": "inconclusive", "why": f"no lambda = 1 in the grid; {text}"}
    plain = next((r for r in at1 if r["mitigation"] == "none"), None)
    best = max(at1, key=lambda r: r["gap_mean"])
    if summary["seeds"] < 2:
        return {"verdict": "inconclusive", "why": f"one seed; {text}"}
    if plain is not None and plain["gap_mean"] >= base - 0.05:
        return {"verdict": "holds", "why": text}
    if best["gap_mean"] < base - 0.05:
        return {"verdict": "does not hold", "why": text}
    return {"verdict": "inconclusive", "why": text}
