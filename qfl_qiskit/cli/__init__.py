"""The ``qfl`` command-line interface."""

from __future__ import annotations

from qfl_qiskit.cli.app import app, main

__all__ = ["app", "main"]
