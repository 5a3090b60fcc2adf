"""``encoding``: how QFL's accuracy depends on the way features become rotation angles.

The QFL paper leaves its sensitivity to input scaling open. S(x) rotates the value qubit by the feature itself, so
each cell trains the bare QFL layer (no classical encoder that could learn the scale) with a linear head on
JapaneseVowels' first 3 LPC channels as 3 modalities (8 summary features each: 24 slots, 6 qubits), with the
features prepared as: standardised with the training split's statistics or raw; clipped to 3 training standard
deviations about the training mean or not; then angle = scale * feature for scale in pi/4, pi/2, pi, 2 pi. The split
is stratified 70/30 (held out: 30%) by the seed.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np

NAME = "encoding"
CLAIM = ("open question of the QFL paper: sensitivity to input scaling (angle scale pi/4..2pi, standardisation, "
         "clipping)")
SCALES = {"pi/4": math.pi / 4, "pi/2": math.pi / 2, "pi": math.pi, "2pi": 2 * math.pi}

#: Settings that only choose which cells exist (left out of the cells' fingerprints).
PLAN_KEYS = ("scales", "standardise", "clip")

def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"scales": ["pi/4", "2pi"], "standardise": [True, False], "clip": [False], "channels": 3,
                "degree": 2, "observables": 16, "epochs": 8, "batch_size": 32, "lr": 0.05, "seeds": [0, 1]}
    return {"scales": list(SCALES), "standardise": [True, False], "clip": [False, True], "channels": 3, "degree": 2,
            "observables": 16, "epochs": 40, "batch_size": 32, "lr": 0.05, "seeds": [0, 1, 2, 3, 4]}


def _label(scale: str, standardise: bool, clip: bool) -> str:
    return f"{scale}-{'std' if standardise else 'raw'}-{'clip' if clip else 'noclip'}"


def describe(s: dict[str, Any]) -> str:
    """The setting in one line, for the claims table."""
    return (f"JapaneseVowels 3 channels (24 slots), bare QFL layer P = {s['degree']}; angle scale "
            f"{', '.join(s['scales'])} x standardised / raw x clipped / not; {len(s['seeds'])} seeds")


def plan(settings: dict[str, Any], seeds: list[int]) -> list[dict[str, Any]]:
    return [{"id": f"{_label(a, st, c)}-seed{s}".replace("/", "_"), "scale": a, "standardise": st, "clip": c,
             "seed": s}
            for s in seeds for st in settings["standardise"] for c in settings["clip"] for a in settings["scales"]]


def prepare(train: np.ndarray, test: np.ndarray, *, scale: float, standardise: bool, clip: bool
            ) -> tuple[np.ndarray, np.ndarray]:
    """Angles of the training and held-out rows: (standardise) -> (clip at mean +- 3 std) -> times ``scale``; every
    statistic from ``train`` only."""
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    out = []
    for x in (train, test):
        if clip:
            x = np.clip(x, mean - 3 * std, mean + 3 * std)
        if standardise:
            x = (x - mean) / std
        out.append(scale * x)
    return out[0], out[1]


def run_cell(settings_json: str, cell: dict[str, Any]) -> dict[str, Any]:
    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.data import MultimodalDataset, load_dataset, stratified_split
    from qfl_qiskit.specs import QFLSpec
    from qfl_qiskit.studies.reproduce.common import train_layer

    s = json.loads(settings_json)
    t0 = time.perf_counter()
    ds = load_dataset("japanese_vowels", max_modalities=s["channels"])
    train, *held = stratified_split(ds, fractions=(0.7, 0.15, 0.15), seed=cell["seed"])  # held out: the last two
    width = ds.dims[0]
    a, b = prepare(np.concatenate(train.modalities, axis=1).astype(np.float64),
                   np.concatenate([np.concatenate(h.modalities, axis=1) for h in held]).astype(np.float64),
                   scale=SCALES[cell["scale"]], standardise=cell["standardise"], clip=cell["clip"])
    x = np.concatenate([a, b])
    data = MultimodalDataset(modalities=tuple(x[:, m * width:(m + 1) * width] for m in range(s["channels"])),
                             labels=np.concatenate([train.labels, *(h.labels for h in held)]),
                             num_classes=ds.num_classes)
    qnn = build_qfl(QFLSpec(modalities=s["channels"], features=width, degree=s["degree"],
                            observables=s["observables"]))
    result = train_layer(qnn, data, epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=cell["seed"],
                         train_size=len(train))
    angles = np.abs(a)
    return {**cell, "result": {**result, "angle_p99": float(np.quantile(angles, 0.99)),
                               "seconds": time.perf_counter() - t0}}


def summarize(settings: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for st in settings["standardise"]:
        for c in settings["clip"]:
            for a in settings["scales"]:
                members = [x for x in cells if (x["scale"], x["standardise"], x["clip"]) == (a, st, c)]
                vals = [x["result"]["test_accuracy"] for x in members]
                rows.append({"scale": a, "standardise": st, "clip": c, "label": _label(a, st, c),
                             "test_accuracy_mean": float(np.mean(vals)),
                             "test_accuracy_std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                             "angle_p99": float(np.mean([x["result"]["angle_p99"] for x in members]))})
    return {"rows": rows, "scales": settings["scales"], "qubits": cells[0]["result"]["qubits"],
            "seeds": len(settings["seeds"])}


def verdict(summary: dict[str, Any]) -> dict[str, str]:
    """The claim is a question; "holds" means QFL is sensitive: among standardised inputs, the best and worst angle
    scale differ by at least 0.05 in held-out accuracy and by more than twice the larger seed spread. "does not
    hold" when they differ by less than 0.02; inconclusive otherwise, and with one seed."""
    std_rows = [r for r in summary["rows"] if r["standardise"] and not r["clip"]] or \
        [r for r in summary["rows"] if r["standardise"]]
    best = max(std_rows, key=lambda r: r["test_accuracy_mean"])
    worst = min(std_rows, key=lambda r: r["test_accuracy_mean"])
    gap = best["test_accuracy_mean"] - worst["test_accuracy_mean"]
    spread = 2 * max(best["test_accuracy_std"], worst["test_accuracy_std"])
    raw = [r for r in summary["rows"] if not r["standardise"]]
    text = (f"standardised: best scale {best['scale']} {best['test_accuracy_mean']:.3f}, worst {worst['scale']} "
            f"{worst['test_accuracy_mean']:.3f} (gap {gap:.3f}, 2 std {spread:.3f})")
    if raw:
        r = max(raw, key=lambda r: r["test_accuracy_mean"])
        text += f"; best raw (unstandardised) {r['label']} {r['test_accuracy_mean']:.3f}"
    if summary["seeds"] < 2:
        return {"verdict": "inconclusive", "why": f"one seed; {text}"}
    if gap >= 0.05 and gap > spread:
        return {"verdict": "holds", "why": text}
    if gap < 0.02:
        return {"verdict": "does not hold", "why": text}
    return {"verdict": "inconclusive", "why": text}
