"""Export circuits as QPY (exact, re-loadable) and OpenQASM 3 text (readable, portable)."""

from __future__ import annotations

from pathlib import Path

from qiskit import QuantumCircuit, qasm3, qpy

from qfl_qiskit.atomic import atomic_write_bytes, atomic_write_text


def export_circuit(circuit: QuantumCircuit, stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.qpy`` and ``<stem>.qasm`` atomically (both or neither on error).

    Args:
        circuit: The circuit (parameters are kept: QASM 3 declares them as ``input float``).
        stem: Path without suffix.

    Returns:
        The QPY and QASM paths.
    """
    import io

    stem = Path(stem)
    buf = io.BytesIO()
    qpy.dump(circuit, buf)
    text = qasm3.dumps(circuit)  # render both before writing either, so a failure leaves no file
    qpy_path, qasm_path = stem.with_suffix(".qpy"), stem.with_suffix(".qasm")
    atomic_write_bytes(qpy_path, buf.getvalue())
    atomic_write_text(qasm_path, text)
    return qpy_path, qasm_path
