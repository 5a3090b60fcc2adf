"""Plots of the reproduction experiments (``qfl reproduce``), from their records only."""

from __future__ import annotations

from typing import Any

import numpy as np

from qfl_qiskit.results.plots import _png, _pyplot


def render(record: dict[str, Any]) -> dict[str, bytes]:
    """The experiment's figures as PNG bytes by file stem."""
    name = record["payload"]["experiment"]
    return {f"{name}_{stem}": data for stem, data in _RENDERERS[name](record).items()}


def _degree(record: dict[str, Any]) -> dict[str, bytes]:
    s = record["payload"]["summary"]
    mean, std = np.array(s["test_accuracy_mean"]), np.array(s["test_accuracy_std"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * len(s["depths"]) + 2.2, 0.9 * len(s["targets"]) + 1.6))
    im = ax.imshow(mean, vmin=0.5, vmax=1.0, cmap="viridis", origin="lower", aspect="auto")
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            ax.text(j, i, f"{mean[i, j]:.2f}" + (f"\n±{std[i, j]:.2f}" if s["seeds"] > 1 else ""), ha="center",
                    va="center", color="w" if mean[i, j] < 0.8 else "k", fontsize=8)
    ax.set_xticks(range(len(s["depths"])), [str(p) for p in s["depths"]])
    ax.set_yticks(range(len(s["targets"])), [str(d) for d in s["targets"]])
    ax.set_xlabel("QFL depth P")
    ax.set_ylabel("target's cross-modal degree d")
    ax.set_title(f"held-out accuracy ({s['seeds']} seed{'s' if s['seeds'] > 1 else ''}); "
                 f"{record['payload']['verdict']['verdict']}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    return {"heatmap": _png(fig)}


def _measurement(record: dict[str, Any]) -> dict[str, bytes]:
    s = record["payload"]["summary"]
    rows = s["rows"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(rows) + 1.5), 3.2))
    x = np.arange(len(rows))
    ax.bar(x, [r["test_accuracy_mean"] for r in rows], yerr=[r["test_accuracy_std"] for r in rows], capsize=3,
           color=["tab:gray" if r["readout"] == "z" else "tab:blue" for r in rows])
    ax.set_xticks(x, [f"{r['readout']}\n({r['outputs']} obs)" for r in rows], fontsize=8)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"QFL read-out, {s['qubits']} qubits, {s['seeds']} seeds; {record['payload']['verdict']['verdict']}",
                 fontsize=9)
    fig.tight_layout()
    return {"accuracy": _png(fig)}


def _plateaus(record: dict[str, Any]) -> dict[str, bytes]:
    s = record["payload"]["summary"]
    plt = _pyplot()
    training = s.get("training") or []
    fig, axes = plt.subplots(1, 3 if training else 2, figsize=(12.0 if training else 8.0, 3.2))
    for t in training:
        axes[2].plot(range(len(t["grad_sq"])), t["grad_sq"], marker=".", label=f"M={t['modalities']} "
                     f"({t['qubits']} qubits)")
    if training:
        axes[2].set_yscale("log")
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("mean square dL/dtheta (full batch)")
        axes[2].legend(fontsize=8)
    for ax, axis, key, label in ((axes[0], "degree", "degree", "QFL depth P"),
                                 (axes[1], "modalities", "qubits", "qubits (M modalities grow)")):
        for cost, color in (("local", "tab:blue"), ("global", "tab:red")):
            rows = [r for r in s["rows"] if r["axis"] == axis and r["cost"] == cost]
            if not rows:
                continue
            x = [r[key] for r in rows]
            y = [r["variance"] for r in rows]
            err = [[r["variance"] - r["ci90"][0] for r in rows], [r["ci90"][1] - r["variance"] for r in rows]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=color, label=f"{cost} cost")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("Var[dC/dtheta] (mean over weights)")
        ax.legend(fontsize=8)
    fig.suptitle(f"gradient variance at initialisation (90% bootstrap), and in training; "
                 f"{record['payload']['verdict']['verdict']}",
                 fontsize=9)
    fig.tight_layout()
    return {"variance": _png(fig)}


def _separation(record: dict[str, Any]) -> dict[str, bytes]:
    s = record["payload"]["summary"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for label in dict.fromkeys(r["model"] for r in s["rows"]):
        rows = [r for r in s["rows"] if r["model"] == label]
        ax.errorbar([r["modalities"] for r in rows], [r["test_accuracy_mean"] for r in rows],
                    yerr=[r["test_accuracy_std"] for r in rows], marker="o", capsize=3, label=label,
                    color="k" if label == "qfl" else None, linewidth=2 if label == "qfl" else 1)
    ax.set_xlabel("modalities M")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0.4, 1.0)
    ax.legend(fontsize=8)
    ax.set_title(f"e_2 of the modalities' signals ({s['seeds']} seeds); {record['payload']['verdict']['verdict']}",
                 fontsize=9)
    fig.tight_layout()
    return {"accuracy": _png(fig)}


def _modalities(record: dict[str, Any]) -> dict[str, bytes]:
    s = record["payload"]["summary"]
    jv = [r for r in s["rows"] if r["data"] == "japanese_vowels" and r["fits"]]
    ecg = [r for r in s["rows"] if r["data"] == "ptbxl" and r["fits"]]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3 if ecg else 2, figsize=(13.0 if ecg else 9.0, 3.6))
    for label in s["models"]:
        rows = [r for r in jv if r["model"] == label]
        if not rows:
            continue
        style = {"color": "k", "linewidth": 2} if label == "qfl" else {"linewidth": 1}
        m = [r["modalities"] for r in rows]
        axes[0].errorbar(m, [r["test_accuracy_mean"] for r in rows], yerr=[r["test_accuracy_std"] for r in rows],
                         marker="o", capsize=3, label=label, **style)
        axes[1].plot(m, [r["grad_norm_init_mean"] for r in rows], marker="o", label=label, **style)
    axes[0].set_xlabel("modalities M (JapaneseVowels channels)")
    axes[0].set_ylabel("held-out accuracy")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("modalities M")
    axes[1].set_ylabel("||dL/d fusion params|| at init")
    if ecg:
        labels = [m for m in s["models"] if any(r["model"] == m for r in ecg)]
        x = np.arange(len(labels))
        for k, (leads, color) in enumerate(((3, "tab:orange"), (12, "tab:blue"))):
            by = {r["model"]: r for r in ecg if r["modalities"] == leads}
            axes[2].bar(x + (k - 0.5) * 0.4, [by[m]["test_macro_auc_mean"] if m in by else 0 for m in labels], 0.4,
                        yerr=[by[m]["test_macro_auc_std"] if m in by else 0 for m in labels], capsize=2,
                        color=color, label=f"{leads} leads")
        axes[2].set_xticks(x, labels, rotation=60, fontsize=7)
        axes[2].set_ylim(0.5, 1.0)
        axes[2].set_ylabel("PTB-XL macro AUC")
        axes[2].legend(fontsize=7)
    fig.suptitle(f"fusion against the number of modalities ({s['seeds']} seeds); "
                 f"{record['payload']['verdict']['verdict']}", fontsize=9)
    fig.tight_layout()
    return {"accuracy": _png(fig)}


def _encoding(record: dict[str, Any]) -> dict[str, bytes]:
    s = record["payload"]["summary"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    x = np.arange(len(s["scales"]))
    for st, clip in dict.fromkeys((r["standardise"], r["clip"]) for r in s["rows"]):
        rows = {r["scale"]: r for r in s["rows"] if (r["standardise"], r["clip"]) == (st, clip)}
        ax.errorbar(x, [rows[a]["test_accuracy_mean"] for a in s["scales"]],
                    yerr=[rows[a]["test_accuracy_std"] for a in s["scales"]], marker="o", capsize=3,
                    label=f"{'standardised' if st else 'raw'}{', clipped 3 std' if clip else ''}")
    ax.set_xticks(x, s["scales"])
    ax.set_xlabel("angle = scale x feature")
    ax.set_ylabel("held-out accuracy (9 speakers)")
    ax.legend(fontsize=8)
    ax.set_title(f"QFL input encoding, {s['qubits']} qubits, {s['seeds']} seeds; "
                 f"{record['payload']['verdict']['verdict']}", fontsize=9)
    fig.tight_layout()
    return {"accuracy": _png(fig)}


def _noise(record: dict[str, Any]) -> dict[str, bytes]:
    s = record["payload"]["summary"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for mit in dict.fromkeys(r["mitigation"] for r in s["rows"]):
        rows = [r for r in s["rows"] if r["mitigation"] == mit]
        ax.errorbar([r["scale"] for r in rows], [r["gap_mean"] for r in rows], yerr=[r["gap_std"] for r in rows],
                    marker="o", capsize=3, label=f"QFL, {mit}")
    ax.axhline(s["qfl_exact_mean"] - s["classical"][s["best_classical"]]["mean"], color="k", linestyle="--",
               linewidth=1, label="QFL noiseless")
    ax.axhline(0.0, color="gray", linewidth=0.8)
    ax.set_xlabel(f"noise: lambda x {s['backend']} calibration")
    ax.set_ylabel(f"accuracy - {s['best_classical']} (paired per seed)")
    ax.legend(fontsize=8)
    ax.set_title(f"QFL against the best classical fusion, {s['samples']} test rows, {s['seeds']} seeds; "
                 f"{record['payload']['verdict']['verdict']}", fontsize=9)
    fig.tight_layout()
    return {"gap": _png(fig)}


def _mma(record: dict[str, Any]) -> dict[str, bytes]:
    s = record["payload"]["summary"]
    panels = list(dict.fromkeys((r["modalities"], r["partition"]) for r in s["rows"]))
    cols = min(3, len(panels))
    plt = _pyplot()
    fig, axes = plt.subplots(-(-len(panels) // cols), cols, figsize=(4.0 * cols, 3.0 * -(-len(panels) // cols)),
                             squeeze=False)
    for ax, (m, p) in zip(axes.flat, panels):
        rows = [r for r in s["rows"] if (r["modalities"], r["partition"]) == (m, p)]
        for method in s["methods"]:
            ax.errorbar([r["missing"] for r in rows], [r[method]["mean"] for r in rows],
                        yerr=[r[method]["std"] for r in rows], marker="o", capsize=3, label=method,
                        **({"color": "k", "linewidth": 2} if method == "mma" else {}))
        ax.set_title(f"{m} modalities, {p}", fontsize=9)
        ax.set_xlabel("missing rate (clients per modality)")
        ax.set_ylabel("test accuracy")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"federated MMA against its baselines ({s['seeds']} seeds); "
                 f"{record['payload']['verdict']['verdict']}", fontsize=9)
    fig.tight_layout()
    return {"accuracy": _png(fig)}


_RENDERERS = {"degree": _degree, "mma": _mma, "noise": _noise, "encoding": _encoding, "modalities": _modalities,
              "measurement": _measurement, "plateaus": _plateaus, "separation": _separation}
