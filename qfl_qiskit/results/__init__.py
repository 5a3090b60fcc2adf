"""Result records (atomic JSON with provenance) and plots made from records."""

from __future__ import annotations

from qfl_qiskit.results.plots import (
    plot_learning_curve,
    plot_transpile_comparison,
    render_learning_curve,
    render_transpile_comparison,
)
from qfl_qiskit.results.records import load_record, make_record, package_versions, provenance, save_record, utc_stamp

__all__ = [
    "load_record",
    "make_record",
    "package_versions",
    "plot_learning_curve",
    "plot_transpile_comparison",
    "provenance",
    "render_learning_curve",
    "render_transpile_comparison",
    "save_record",
    "utc_stamp",
]
