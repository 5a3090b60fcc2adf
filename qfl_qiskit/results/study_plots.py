"""Plots of a noise-study record (from the record only)."""

from __future__ import annotations

from typing import Any

from qfl_qiskit.results.plots import _png, _pyplot


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def render_noise_study(record: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes by name: ``error_vs_scale``, ``accuracy_vs_scale`` (with a model part), ``overhead``,
    ``barren_plateau`` (with the diagnostic)."""
    plt = _pyplot()
    summary = record["payload"]["summary"]
    out: dict[str, bytes] = {}
    mitigations = list(dict.fromkeys(r["mitigation"] for r in summary))
    expectation = [r for r in summary if r["kind"] == "expectation"]
    if expectation:
        targets = list(dict.fromkeys(r["target"] for r in expectation))
        fig, axes = plt.subplots(1, len(targets), figsize=(4.6 * len(targets), 3.6), constrained_layout=True,
                                 squeeze=False)
        for ax, target in zip(axes[0], targets):
            for m in mitigations:
                rows = sorted((r for r in expectation if r["target"] == target and r["mitigation"] == m),
                              key=lambda r: r["scale"])
                ax.plot([r["scale"] for r in rows], [_num(r["mae"]) for r in rows], marker="o", ms=3, label=m)
            ax.set_title(target.split("/")[-1], fontsize=9)
            ax.set_xlabel("noise scale lambda")
            ax.set_ylabel("mean |error| vs exact")
            ax.legend(fontsize=8)
        out["error_vs_scale"] = _png(fig)
        fig, ax = plt.subplots(figsize=(4.6, 3.4), constrained_layout=True)
        cost = {m: _num(next((r["circuits_per_value"] for r in expectation
                              if r["mitigation"] == m and r["circuits_per_value"] is not None), None))
                for m in mitigations}
        bars = ax.bar(list(cost), list(cost.values()), color="#4c72b0")
        ax.bar_label(bars, fontsize=8)
        ax.set_ylabel("circuits per mitigated value")
        ax.set_title("mitigation overhead (x shots per circuit)", fontsize=9)
        out["overhead"] = _png(fig)
    model = [r for r in summary if r["kind"] == "model"]
    if model:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
        for ax, key in zip(axes, ("accuracy", "macro_auc")):
            for m in mitigations:
                rows = sorted((r for r in model if r["mitigation"] == m), key=lambda r: r["scale"])
                ax.plot([r["scale"] for r in rows], [_num(r[key]) for r in rows], marker="o", ms=3, label=m)
                if any(f"finetuned_{key}" in r for r in rows):
                    ax.plot([r["scale"] for r in rows], [_num(r.get(f"finetuned_{key}")) for r in rows], ls="--",
                            marker="x", ms=3, label=f"{m}, trained under noise")
            ax.axhline(_num(model[0][f"exact_{key}"]), color="grey", ls="--", lw=0.8, label="exact")
            ax.set_xlabel("noise scale lambda")
            ax.set_ylabel(f"test {key.replace('_', ' ')}")
            ax.legend(fontsize=8)
        out["accuracy_vs_scale"] = _png(fig)
    plateau = record["payload"].get("plateau")
    if plateau:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
        for ax, key, x in ((axes[0], "vs_degree", "degree"), (axes[1], "vs_modalities", "modalities")):
            rows = plateau[key]
            ax.semilogy([r[x] for r in rows], [r["variance"] for r in rows], marker="o")
            ax.set_xlabel(f"QFL {x} ({'P' if x == 'degree' else 'M'})")
            ax.set_ylabel("Var[d<O>/d theta_0]")
        fig.suptitle("barren-plateau diagnostic: gradient variance over random weights and inputs", fontsize=9)
        out["barren_plateau"] = _png(fig)
    return out
