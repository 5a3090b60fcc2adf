"""Plots of a noise-study record (from the record only)."""

from __future__ import annotations

from typing import Any

from qfl_qiskit.results.plots import _png, _pyplot


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _label(target: str) -> str:
    """A panel title for a summary target: ``circuits/qfl_default.toml (obs z)`` -> ``qfl_default, Z on each
    qubit``."""
    name, _, obs = target.partition(" (obs ")
    stem = name.rsplit("/", 1)[-1].removesuffix(".toml")
    obs = obs.rstrip(")")
    return f"{stem}, {'Z on each qubit' if obs == 'z' else 'its own observables' if obs in ('', 'circuit') else obs}"


def _spread(cells: list[dict[str, Any]], kind: str, key: str) -> dict[tuple[str, float, str], float]:
    """Standard deviation over seeds of ``result[key]`` per (summary target, scale, mitigation)."""
    import numpy as np

    groups: dict[tuple[str, float, str], list[float]] = {}
    for c in cells:
        if c["kind"] != kind or not isinstance(c.get("result"), dict) or c["result"].get(key) is None:
            continue
        target = c["target"] if c.get("observables") in (None, "circuit") or kind != "expectation" \
            else f"{c['target']} (obs {c['observables']})"
        groups.setdefault((target, float(c["scale"]), c["mitigation"]), []).append(float(c["result"][key]))
    return {k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in groups.items()}


def render_noise_study(record: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes by name: ``error_vs_scale``, ``accuracy_vs_scale`` (with a model part), ``overhead``,
    ``barren_plateau`` (with the diagnostic). Error bars: the standard deviation over seeds (expectation
    errors) and the binomial standard error sqrt(p(1-p)/n) of n test samples (accuracy); sample counts in the
    titles."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    summary = record["payload"]["summary"]
    cells = record["payload"].get("cells", [])
    study = record.get("specs", {}).get("study", {})
    out: dict[str, bytes] = {}
    mitigations = list(dict.fromkeys(r["mitigation"] for r in summary))
    expectation = [r for r in summary if r["kind"] == "expectation"]
    if expectation:
        targets = list(dict.fromkeys(r["target"] for r in expectation))
        spread = _spread(cells, "expectation", "mae")
        bindings = (study.get("expectation") or {}).get("bindings")
        fig, axes = plt.subplots(1, len(targets), figsize=(4.6 * len(targets), 3.8), constrained_layout=True,
                                 squeeze=False)
        for ax, target in zip(axes[0], targets):
            seeds = 0
            for m in mitigations:
                rows = sorted((r for r in expectation if r["target"] == target and r["mitigation"] == m),
                              key=lambda r: r["scale"])
                seeds = max([seeds] + [r.get("seeds", 0) for r in rows])
                ax.errorbar([r["scale"] for r in rows], [_num(r["mae"]) for r in rows],
                            yerr=[spread.get((target, float(r["scale"]), m), 0.0) for r in rows],
                            marker="o", ms=3, capsize=2, label=m)
            ax.set_title(f"{_label(target)}\n{seeds} seeds" + (f" x {bindings} bindings" if bindings else ""),
                         fontsize=9)
            ax.set_xlabel("noise scale lambda (x calibration)")
            ax.set_ylabel("mean |error| vs exact")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
        out["error_vs_scale"] = _png(fig)
        fig, ax = plt.subplots(figsize=(4.6, 3.4), constrained_layout=True)
        cost = {m: _num(next((r["circuits_per_value"] for r in expectation
                              if r["mitigation"] == m and r["circuits_per_value"] is not None), None))
                for m in mitigations}
        bars = ax.bar(list(cost), list(cost.values()), color="#4c72b0")
        ax.bar_label(bars, fontsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("circuits per mitigated value")
        ax.set_title("mitigation overhead (x shots per circuit)", fontsize=9)
        out["overhead"] = _png(fig)
    model = [r for r in summary if r["kind"] == "model"]
    if model:
        samples = next((c["result"]["samples"] for c in cells if c["kind"] == "model"
                        and isinstance(c.get("result"), dict) and c["result"].get("samples")), None)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
        for ax, key in zip(axes, ("accuracy", "macro_auc")):
            values = []
            for m in mitigations:
                rows = sorted((r for r in model if r["mitigation"] == m), key=lambda r: r["scale"])
                ys = np.array([_num(r[key]) for r in rows])
                values.extend(ys[np.isfinite(ys)])
                err = np.sqrt(np.clip(ys * (1 - ys), 0, None) / samples) if key == "accuracy" and samples else None
                ax.errorbar([r["scale"] for r in rows], ys, yerr=err, marker="o", ms=3, capsize=2, label=m)
                if any(f"finetuned_{key}" in r for r in rows):
                    ax.plot([r["scale"] for r in rows], [_num(r.get(f"finetuned_{key}")) for r in rows], ls="--",
                            marker="x", ms=3, label=f"{m}, trained under noise")
            exact = _num(model[0][f"exact_{key}"])
            ax.axhline(exact, color="grey", ls="--", lw=0.8, label="exact")
            low = min(values + [exact]) if values else 0.0
            ax.set_ylim(max(0.0, min(low - 0.05, 0.8)), 1.0)  # never a range narrower than 0.2
            ax.set_xlabel("noise scale lambda (x calibration)")
            ax.set_ylabel(f"test {key.replace('_', ' ')}")
            ax.legend(fontsize=8)
        fig.suptitle(f"trained model under noise: {samples or '?'} test samples"
                     + (f" (one sample = {1 / samples:.3f}; bars: binomial standard error)" if samples else ""),
                     fontsize=9)
        out["accuracy_vs_scale"] = _png(fig)
    plateau = record["payload"].get("plateau")
    if plateau:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
        draws = (study.get("plateau") or {}).get("samples")
        for ax, key, x in ((axes[0], "vs_degree", "degree"), (axes[1], "vs_modalities", "modalities")):
            rows = plateau[key]
            var = np.array([r["variance"] for r in rows])
            # normal-theory standard error of a sample variance from n draws: var * sqrt(2 / (n - 1))
            err = var * np.sqrt(2.0 / (draws - 1)) if draws and draws > 1 else None
            ax.errorbar([r[x] for r in rows], var, yerr=err, marker="o", capsize=3)
            ax.set_yscale("log")
            for r in rows:
                ax.annotate(f"{r['qubits']}q", (r[x], r["variance"]), textcoords="offset points", xytext=(4, 4),
                            fontsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.margins(x=0.12)
            ax.set_xlabel(f"QFL {x} ({'P' if x == 'degree' else 'M'}); labels: qubits")
            ax.set_ylabel("Var[d<O>/d theta_0]")
        fig.suptitle("barren-plateau diagnostic: gradient variance over random weights and inputs"
                     + (f" ({draws} draws per point; bars: standard error of the variance)" if draws else ""),
                     fontsize=9)
        out["barren_plateau"] = _png(fig)
    return out
