"""Plots made from records only (never from live objects), so any record can be re-plotted later."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from qfl_qiskit.atomic import atomic_write_bytes


def plot_transpile_comparison(record: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`render_transpile_comparison` of ``record`` to the PNG ``path`` (atomically)."""
    return atomic_write_bytes(path, render_transpile_comparison(record))


def render_transpile_comparison(record: dict[str, Any]) -> bytes:
    """Bar charts comparing backends on two-qubit count, depth and ESP from a transpile-report record.

    Args:
        record: A record of type "transpile_report" (payload ``reports``: one per backend).

    Returns:
        PNG bytes (rendered before anything is written, so a failure leaves no file).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = record["payload"]["reports"]
    names = [r["backend"] for r in reports]
    panels = [
        ("two_qubit_count", "two-qubit gates"),
        ("depth", "depth"),
        ("esp", "estimated success probability"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), constrained_layout=True)
    for ax, (key, label) in zip(axes, panels):
        values = [r[key] for r in reports]
        bars = ax.bar(names, values, color="#4c72b0")
        if key == "esp":
            base = [r["baseline_esp"] for r in reports]
            ax.scatter(names, base, color="#dd8452", zorder=3, label="level 3, seed 0")
            ax.set_ylim(0, 1)
            ax.legend(loc="lower right", fontsize=8)
        ax.bar_label(bars, fmt="%.3g" if key == "esp" else "%d", fontsize=8)
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
    circuit = record["specs"].get("circuit", {})
    fig.suptitle(f"{circuit.get('kind', 'circuit')} {circuit.get('spec_id', '')}: best of "
                 f"{record['specs']['transpile']['seeds']} seeds per backend")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
