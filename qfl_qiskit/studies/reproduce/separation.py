"""``separation``: a cross-modal task on which low-rank fusion needs a rank that grows with M, against QFL at a
fixed size.

Each of M modalities carries one signal z_m, uniform on [-1, 1]; the label is whether the second elementary
symmetric polynomial e_2(z) = sum_{i<j} z_i z_j lies above its median. e_2 is a degree-2 cross-modal polynomial:
within reach of QFL of depth P = 2 whatever M, while LMF fuses by a rank-r sum of products of per-modality linear
maps, and e_2 as such a product form needs a rank that grows with M. Both models are the toolkit's own
(``QFLFusion``, ``LMFFusion`` with their linear encoders and head), trained with its training loop; a cell is one
model on one M and seed. The claim is this project's test of the QFL paper's "QFL stays stable as M grows while
low-rank fusion degrades".
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

NAME = "separation"
CLAIM = ("low-rank tensor fusion (LMF) needs a rank growing with M on a cross-modal task (e_2 of the modalities' "
         "signals) that QFL of fixed depth P = 2 fits at every M")

#: Settings that only choose which cells exist (left out of the cells' fingerprints).
PLAN_KEYS = ("modalities", "ranks")

def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"modalities": [2, 6], "ranks": [1, 4], "qfl_degree": 2, "samples": 400, "epochs": 15,
                "batch_size": 32, "lr": 0.03, "seeds": [0, 1]}
    return {"modalities": [2, 4, 6, 8, 12], "ranks": [1, 2, 4, 8, 16], "qfl_degree": 2, "samples": 2000,
            "epochs": 60, "batch_size": 32, "lr": 0.03, "seeds": [0, 1, 2, 3, 4]}


def describe(s: dict[str, Any]) -> str:
    """The setting in one line, for the claims table."""
    return (f"e_2 of M = {', '.join(map(str, s['modalities']))} one-feature modalities, {s['samples']} samples; "
            f"QFL P = {s['qfl_degree']} against LMF ranks {', '.join(map(str, s['ranks']))}; {len(s['seeds'])} "
            "seeds")


def plan(settings: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    models = [("qfl", None)] + [("lmf", r) for r in settings["ranks"]]
    return [{"id": f"{name}{'' if r is None else f'-r{r}'}-M{m}-seed{s}", "model": name, "rank": r,
             "modalities": m, "seed": s}
            for s in seeds for m in settings["modalities"] for name, r in models]


def e2_task(modalities: int, n: int, seed: int) -> Any:
    """The data set: M one-feature modalities z_m ~ U[-1, 1]; label e_2(z) > median (balanced)."""
    from qfl_qiskit.data import MultimodalDataset

    rng = np.random.default_rng([seed, modalities])
    z = rng.uniform(-1.0, 1.0, (n, modalities))
    e2 = (z.sum(1) ** 2 - (z**2).sum(1)) / 2
    labels = np.zeros(n, dtype=np.int64)
    labels[np.argsort(e2, kind="stable")[n // 2:]] = 1
    return MultimodalDataset(modalities=tuple(z[:, [m]] for m in range(modalities)), labels=labels, num_classes=2)


def run_cell(settings_json: str, cell: dict[str, Any]) -> dict[str, Any]:
    import torch.nn.functional as F

    from qfl_qiskit.data import stratified_split, to_tensors
    from qfl_qiskit.models import build_model
    from qfl_qiskit.specs.train import LMFModelSpec, QFLModelSpec
    from qfl_qiskit.training import evaluate, fit

    s = json.loads(settings_json)
    t0 = time.perf_counter()
    ds = e2_task(cell["modalities"], s["samples"], cell["seed"])
    train, val, test = (to_tensors(p) for p in stratified_split(ds, fractions=(0.7, 0.15, 0.15), seed=cell["seed"]))
    spec = (QFLModelSpec(features=1, degree=s["qfl_degree"]) if cell["model"] == "qfl"
            else LMFModelSpec(features=1, rank=cell["rank"]))
    model = build_model(spec, ds.dims, 2, seed=cell["seed"])
    fit(model, train, val, num_classes=2, loss_fn=F.cross_entropy, lr=s["lr"], epochs=s["epochs"],
        batch_size=s["batch_size"], patience=0, monitor="accuracy", seed=cell["seed"])
    metrics = evaluate(model, test, num_classes=2)
    return {**cell, "result": {"test_accuracy": metrics["accuracy"], "test_macro_auc": metrics["macro_auc"],
                               "fusion_parameters": model.fusion_parameters,
                               "total_parameters": model.total_parameters, "seconds": time.perf_counter() - t0}}


def summarize(settings: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for label in ["qfl"] + [f"lmf-r{r}" for r in settings["ranks"]]:
        for m in settings["modalities"]:
            members = [c for c in cells if c["modalities"] == m and
                       (c["model"] if c["rank"] is None else f"lmf-r{c['rank']}") == label]
            vals = [c["result"]["test_accuracy"] for c in members]
            rows.append({"model": label, "modalities": m, "test_accuracy_mean": float(np.mean(vals)),
                         "test_accuracy_std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                         "fusion_parameters": members[0]["result"]["fusion_parameters"]})
    return {"rows": rows, "modalities": settings["modalities"], "ranks": settings["ranks"],
            "seeds": len(settings["seeds"])}


def verdict(summary: dict[str, Any]) -> dict[str, str]:
    """Holds when (a) QFL's accuracy at the largest M stays within 0.05 of its accuracy at the smallest M, (b)
    rank-1 LMF loses more than that from the smallest to the largest M, and (c) the largest rank recovers at
    least half of rank 1's loss; does not hold when LMF at rank 1 does not degrade with M, or QFL degrades as much
    as it; inconclusive otherwise, and with one seed."""
    acc = {(r["model"], r["modalities"]): r["test_accuracy_mean"] for r in summary["rows"]}
    lo, hi = min(summary["modalities"]), max(summary["modalities"])
    r1, rmax = "lmf-r1", f"lmf-r{max(summary['ranks'])}"
    qfl_drop = acc[("qfl", lo)] - acc[("qfl", hi)]
    r1_drop = acc[(r1, lo)] - acc[(r1, hi)]
    recovered = acc[(rmax, hi)] - acc[(r1, hi)]
    text = (f"from M={lo} to M={hi}: QFL {acc[('qfl', lo)]:.3f} -> {acc[('qfl', hi)]:.3f}, LMF rank 1 "
            f"{acc[(r1, lo)]:.3f} -> {acc[(r1, hi)]:.3f}, {rmax} at M={hi} {acc[(rmax, hi)]:.3f}")
    if summary["seeds"] < 2:
        return {"verdict": "inconclusive", "why": f"one seed; {text}"}
    if qfl_drop <= 0.05 and r1_drop > 0.05 and recovered >= r1_drop / 2:
        return {"verdict": "holds", "why": text}
    if r1_drop <= 0.0 or qfl_drop >= r1_drop:
        return {"verdict": "does not hold", "why": text}
    return {"verdict": "inconclusive", "why": text}
