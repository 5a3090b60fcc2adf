"""Export circuits as QPY (exact, re-loadable) and OpenQASM 3 text (readable, portable)."""

from __future__ import annotations

from pathlib import Path

from qiskit import QuantumCircuit, qasm3, qpy

from qfl_qiskit.atomic import Stage


def export_circuit(circuit: QuantumCircuit, stem: str | Path, *, stage: Stage | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.qpy`` and ``<stem>.qasm`` atomically (both or neither on error).

    Args:
        circuit: The circuit (parameters are kept: QASM 3 declares them as ``input float``).
        stem: Path without suffix.
        stage: Add both files to this :class:`~qfl_qiskit.atomic.Stage` (written when the caller commits it,
            with the rest of its outputs) instead of writing them now.

    Returns:
        The QPY and QASM paths.
    """
    import io

    stem = Path(stem)
    buf = io.BytesIO()
    qpy.dump(circuit, buf)
    text = qasm3.dumps(circuit)  # render both before writing either, so a failure leaves no file
    qpy_path, qasm_path = stem.with_suffix(".qpy"), stem.with_suffix(".qasm")
    own = stage is None
    stage = Stage() if own else stage
    stage.add(qpy_path, buf.getvalue()).add(qasm_path, text)
    if own:
        stage.commit()
    return qpy_path, qasm_path
