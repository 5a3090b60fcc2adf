"""Plots made from records only (never from live objects), so any record can be re-plotted later."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from qfl_qiskit.atomic import atomic_write_bytes


def plot_transpile_comparison(record: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`render_transpile_comparison` of ``record`` to the PNG ``path`` (atomically)."""
    return atomic_write_bytes(path, render_transpile_comparison(record))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _pyplot().close(fig)
    return buf.getvalue()


def plot_learning_curve(record: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`render_learning_curve` of ``record`` to the PNG ``path`` (atomically)."""
    return atomic_write_bytes(path, render_learning_curve(record))


def render_learning_curve(record: dict[str, Any]) -> bytes:
    """Training and validation loss, and validation metrics, per epoch, from a "training_run" record.

    Args:
        record: A record whose payload has ``history`` (rows with ``epoch``, ``train_loss``, ``val_loss``,
            ``val_accuracy``, ``val_macro_f1``, ``val_macro_auc``), ``label`` and ``best_epoch``.

    Returns:
        PNG bytes.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    payload = record["payload"]
    hist = payload["history"]
    epochs = [r["epoch"] for r in hist]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6), constrained_layout=True)
    left.plot(epochs, [r["train_loss"] for r in hist], marker="o", ms=3, label="train")
    left.plot(epochs, [r["val_loss"] for r in hist], marker="o", ms=3, label="validation")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend(fontsize=8)
    shown = []
    styles = (("val_accuracy", "accuracy", "-", "o", "accuracy"), ("val_macro_f1", "macro-F1", "--", "s", "macro_f1"),
              ("val_macro_auc", "macro AUC", ":", "^", "macro_auc"))
    test = payload.get("test") or {}
    for key, name, ls, marker, test_key in styles:
        line, = right.plot(epochs, [r[key] for r in hist], ls=ls, marker=marker, ms=3, label=f"validation {name}")
        shown += [r[key] for r in hist]
        if test_key in test:  # the test split, once, with the best epoch's weights
            right.scatter([payload["best_epoch"]], [test[test_key]], marker="*", s=90, color=line.get_color(),
                          edgecolor="black", linewidths=0.5, zorder=4, label=f"test {name}")
            shown.append(test[test_key])
    low, high = min(shown), max(shown)
    pad = max(0.02, 0.1 * (high - low))
    right.set_ylim(max(0.0, low - pad), min(1.0, high + pad) + 0.005)  # fitted, not 0-1
    right.set_xlabel("epoch")
    right.set_ylabel("metric")
    right.legend(fontsize=7, loc="lower right", ncol=2)
    for ax in (left, right):
        ax.axvline(payload["best_epoch"], color="grey", ls="--", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    train = (record.get("specs") or {}).get("train") or {}
    run = f"{train.get('name', '?')} ({(train.get('data') or {}).get('name', '?')}, seed {train.get('seed', '?')})"
    fig.suptitle(f"{run}: {payload['label']}, {payload['fusion_parameters']} fusion / "
                 f"{payload['total_parameters']} total parameters; dashed line: best epoch, stars: test", fontsize=9)
    return _png(fig)


def render_comparison(records: list[dict[str, Any]], *, title: str) -> bytes:
    """The models of one or more comparison runs (one per seed) side by side: test accuracy, macro-F1 and macro
    AUC per model (mean, with each seed as a point and the standard deviation as a bar when there are several),
    and the fusion and total parameter counts (log scale)."""
    plt = _pyplot()
    labels = [r["label"] for r in records[0]["payload"]["models"]]
    metrics = (("accuracy", "test accuracy"), ("macro_f1", "test macro-F1"), ("macro_auc", "test macro AUC"))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), constrained_layout=True)
    x = np.arange(len(labels))
    for ax, (key, name) in zip(axes, metrics):
        per_seed = np.array([[next(m for m in r["payload"]["models"] if m["label"] == lab)["test"][key]
                              for lab in labels] for r in records])
        mean = per_seed.mean(axis=0)
        err = per_seed.std(axis=0, ddof=1) if len(records) > 1 else None
        colors = ["#c44e52" if next(m for m in records[0]["payload"]["models"] if m["label"] == lab)["quantum"]
                  else "#4c72b0" for lab in labels]
        ax.bar(x, mean, yerr=err, color=colors, alpha=0.8, capsize=3)
        for row in per_seed:
            ax.scatter(x, row, color="black", s=8, zorder=3)
        low = float(per_seed.min())
        ax.set_ylim(max(0.0, min(low - 0.05, 1.0 - 0.2)), 1.0)
        ax.set_xticks(x, labels, rotation=30)
        ax.set_ylabel(name)
    fusion = [next(m for m in records[0]["payload"]["models"] if m["label"] == lab)["fusion_parameters"]
              for lab in labels]
    total = [next(m for m in records[0]["payload"]["models"] if m["label"] == lab)["total_parameters"]
             for lab in labels]
    axes[3].bar(x - 0.2, fusion, width=0.4, label="fusion", color="#55a868")
    axes[3].bar(x + 0.2, total, width=0.4, label="total", color="#8172b2")
    axes[3].set_yscale("log")
    axes[3].set_xticks(x, labels, rotation=30)
    axes[3].set_ylabel("parameters")
    axes[3].legend(fontsize=8)
    seeds = ", ".join(str(r["specs"]["train"]["seed"]) for r in records)
    fig.suptitle(f"{title}: {len(records)} seed{'s' if len(records) > 1 else ''} ({seeds}); red: quantum; "
                 f"bars: mean{' +- std over seeds, dots: each seed' if len(records) > 1 else ''}", fontsize=9)
    return _png(fig)


def plot_qpu_curve(record: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`render_qpu_curve` of ``record`` to the PNG ``path`` (atomically)."""
    return atomic_write_bytes(path, render_qpu_curve(record))


def render_qpu_curve(record: dict[str, Any]) -> bytes:
    """A device training run: the training loss per step (from the device's values) with the QPU seconds used,
    and the exact-simulator test metrics before and after.

    Args:
        record: A "training_run" record with a ``qpu`` payload (written by :mod:`qfl_qiskit.training.qpu`).

    Returns:
        PNG bytes.
    """
    plt = _pyplot()
    payload = record["payload"]
    hist, qpu = payload["history"], payload["qpu"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    steps = [r["step"] for r in hist]
    left.plot(steps, [r["train_loss"] for r in hist], marker="o", ms=3, label="training loss (device values)")
    left.set_xlabel("optimisation step (one Runtime job each)")
    left.set_ylabel("loss")
    if steps:
        left.set_xticks(steps if len(steps) <= 12 else steps[:: max(1, len(steps) // 10)])
    used = qpu["qpu_seconds"]["used"]
    budget = qpu["qpu_seconds"]["budget"]
    left.set_title(f"QPU s used {used:.1f}" + (f" of {budget:g}" if budget else "") +
                   (" (estimated, local)" if qpu["local"] else ""), fontsize=9)
    left.legend(fontsize=8)
    names = ("accuracy", "macro_f1", "macro_auc")
    before = qpu["exact_metrics"]["before"]["test"]
    after = qpu["exact_metrics"]["after"]["test"]
    x = np.arange(len(names))
    right.bar(x - 0.2, [before[n] for n in names], 0.4, label="before")
    right.bar(x + 0.2, [after[n] for n in names], 0.4, label="after")
    for i, n in enumerate(names):
        right.text(i - 0.2, before[n], f"{before[n]:.3f}", ha="center", va="bottom", fontsize=7)
        right.text(i + 0.2, after[n], f"{after[n]:.3f}", ha="center", va="bottom", fontsize=7)
    right.set_xticks(x, ["accuracy", "macro-F1", "macro AUC"])
    lo = min(min(before[n], after[n]) for n in names)
    right.set_ylim(max(0.0, lo - 0.1), 1.05)
    right.set_ylabel("test split, exact simulator")
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{record['specs']['train']['name']} / {payload['label']} on {qpu['backend']}: "
                 f"{qpu['steps_done']}/{qpu['steps_planned']} steps, {qpu['gradient']}"
                 + (f" ({qpu['stop_reason']})" if qpu["stop_reason"] else ""), fontsize=10)
    return _png(fig)


def render_transpile_comparison(record: dict[str, Any]) -> bytes:
    """Bar charts comparing backends on two-qubit count (with the preset's best beside the kept one), two-qubit
    depth, scheduled duration and ESP, from a transpile-report record.

    Args:
        record: A record of type "transpile_report" (payload ``reports``: one per backend).

    Returns:
        PNG bytes (rendered before anything is written, so a failure leaves no file).
    """
    plt = _pyplot()
    reports = record["payload"]["reports"]
    names = [r["backend"] for r in reports]
    panels = [
        ("two_qubit_count", "two-qubit gates", "gates"),
        ("two_qubit_depth", "two-qubit depth", "layers"),
        ("estimated_duration_s", "scheduled duration", "microseconds"),
        ("esp", "estimated success probability", "ESP"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.8), constrained_layout=True)
    for ax, (key, title, unit) in zip(axes, panels):
        raw = [r.get(key) for r in reports]
        values = [(v or 0.0) * 1e6 if key == "estimated_duration_s" else (v or 0) for v in raw]
        bars = ax.bar(names, values, color="#4c72b0", label="kept")
        if key == "esp":
            base = [r["baseline_esp"] for r in reports]
            ax.scatter(names, base, color="#dd8452", zorder=3, label="preset level 3, seed 0")
            ax.set_ylim(0, 1)
            ax.legend(loc="lower right", fontsize=7)
        if key == "two_qubit_count" and any(r.get("preset_two_qubit_count") for r in reports):
            preset = [r.get("preset_two_qubit_count") or 0 for r in reports]
            ax.scatter(names, preset, color="#dd8452", marker="_", s=300, zorder=3, label="preset's best")
            ax.legend(loc="lower right", fontsize=7)
        ax.bar_label(bars, fmt="%.3g" if key in ("esp", "estimated_duration_s") else "%d", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.tick_params(axis="x", rotation=30)
    circuit = record["specs"].get("circuit", {})
    kept = ", ".join(f"{r['backend']}: {r.get('strategy', 'preset')}" for r in reports)
    fig.suptitle(f"{circuit.get('kind', 'circuit')} {circuit.get('spec_id', '')}: best of "
                 f"{record['specs']['transpile']['seeds']} preset seeds and the native placements ({kept})",
                 fontsize=9)
    return _png(fig)


def plot_federated_accuracy(record: dict[str, Any], path: str | Path) -> Path:
    """Global test accuracy and macro-F1 per round, and each client's training loss, from a federated record."""
    plt = _pyplot()
    hist = record["payload"]["history"]
    rounds = [h["round"] for h in hist]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for key, label in (("accuracy", "accuracy"), ("macro_f1", "macro-F1")):
        left.plot(rounds, [h["global"][key] for h in hist], marker="o", ms=3, label=label)
    left.set_xlabel("round")
    left.set_ylabel("global model, test split")
    left.set_ylim(0, 1.02)
    left.legend(fontsize=8)
    clients = sorted({c["client"] for h in hist for c in h.get("clients", [])}, key=int)
    for c in clients:
        pts = [(h["round"], e["train_loss"]) for h in hist for e in h.get("clients", []) if e["client"] == c]
        right.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=f"client {c}")
    right.set_xlabel("round")
    right.set_ylabel("local training loss")
    if clients:
        right.legend(fontsize=7)
    spec = record["specs"]["federated"]
    fig.suptitle(f"{spec['name']}: {spec['clients']} clients, {spec['partition']}, missing {spec['missing_rate']}, "
                 f"{'modality-aware' if spec['modality_aware'] else 'plain'} FedAvg", fontsize=9)
    return atomic_write_bytes(path, _png(fig))
