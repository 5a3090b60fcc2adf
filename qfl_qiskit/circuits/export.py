"""Export circuits as QPY (exact, re-loadable) and OpenQASM 3 text (readable, portable), each with a JSON sidecar
that says what the circuit is: spec, observables, which parameters are inputs and which are weights (in order),
their OpenQASM 3 names, and for ISA circuits the layout. :func:`load_qnn` reads either file back into the same
:class:`~qfl_qiskit.circuits.types.QnnCircuit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qiskit import QuantumCircuit, qasm3, qpy

from qfl_qiskit.atomic import Stage, json_text
from qfl_qiskit.circuits.types import QnnCircuit
from qfl_qiskit.errors import DataError

SIDECAR_VERSION = 1


def qasm_name(name: str) -> str:
    """The identifier Qiskit's OpenQASM 3 exporter gives a parameter (``x[0]`` -> ``_x_0_``)."""
    import re

    escaped = re.sub(r"[^\w]", "_", name)
    return escaped if re.fullmatch(r"[A-Za-z_]\w*", name) else f"_{escaped}" if not escaped.startswith("_") \
        else escaped


def sidecar(qnn: QnnCircuit, circuit: QuantumCircuit | None = None, *, spec: Any = None) -> dict[str, Any]:
    """The sidecar of ``qnn`` (or of ``circuit``, an ISA version of it): spec id (and the spec), kind, observables
    (labels and coefficients over the logical qubits), input and weight parameter names in order with their
    OpenQASM 3 names, and for a laid-out circuit the physical qubit of each logical qubit."""
    circuit = circuit if circuit is not None else qnn.circuit
    present = {p.name for p in circuit.parameters}
    names = [p.name for p in (*qnn.inputs, *qnn.weights)]
    out: dict[str, Any] = {
        "format": "qfl_qiskit.circuit", "version": SIDECAR_VERSION,
        "kind": qnn.metadata.get("kind"), "spec_id": qnn.metadata.get("spec_id"),
        "spec": spec.model_dump(mode="json") if hasattr(spec, "model_dump") else spec,
        "num_qubits": qnn.circuit.num_qubits,
        "inputs": {"vector": qnn.inputs.name, "names": [p.name for p in qnn.inputs]},
        "weights": {"vector": qnn.weights.name, "names": [p.name for p in qnn.weights]},
        "absent_parameters": [n for n in names if n not in present],
        "qasm_names": {n: qasm_name(n) for n in names},
        "observables": [{"paulis": [p.to_label() for p in op.paulis], "coeffs": [[c.real, c.imag] for c in op.coeffs]}
                        for op in qnn.observables],
        "metadata": qnn.metadata,
        "layout": None,
    }
    if circuit.layout is not None:
        out["layout"] = {"initial": circuit.layout.initial_index_layout(filter_ancillas=True),
                         "final": circuit.layout.final_index_layout(filter_ancillas=True),
                         "physical_qubits": circuit.num_qubits}
    return out


def export_circuit(circuit: QuantumCircuit, stem: str | Path, *, stage: Stage | None = None,
                   meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.qpy`` and ``<stem>.qasm`` (and ``<stem>.json``, the :func:`sidecar` ``meta``) atomically
    (all or none on error).

    Args:
        circuit: The circuit (parameters are kept: QASM 3 declares them as ``input float``).
        stem: Path without suffix.
        stage: Add the files to this :class:`~qfl_qiskit.atomic.Stage` (written when the caller commits it,
            with the rest of its outputs) instead of writing them now.
        meta: The sidecar to write beside them.

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
    if meta is not None:
        stage.add(stem.with_suffix(".json"), json_text(meta))
    if own:
        stage.commit()
    return qpy_path, qasm_path


def load_qnn(path: str | Path) -> QnnCircuit:
    """Read an exported circuit (``.qpy`` or ``.qasm``) and its ``.json`` sidecar back into a
    :class:`QnnCircuit`: the same parameter names (OpenQASM 3's ``_x_0_`` become ``x[0]`` again), inputs and
    weights in order, observables (laid out on the physical qubits for an ISA circuit) and metadata.

    Raises:
        DataError: A missing or unreadable file, or a sidecar that does not describe this circuit.
    """
    from qiskit.circuit import ParameterVector
    from qiskit.quantum_info import SparsePauliOp

    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise DataError(f"{path}: needs the circuit file and its sidecar {meta_path.name} (written by "
                        "`qfl circuit build` and `qfl transpile-report`)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if path.suffix == ".qasm":
            circuit = qasm3.loads(path.read_text(encoding="utf-8"))
        else:
            with path.open("rb") as fh:
                circuit = qpy.load(fh)[0]
    except Exception as exc:  # JSON, QPY and QASM parsers raise many kinds
        raise DataError(f"{path}: cannot read ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
    if meta.get("format") != "qfl_qiskit.circuit":
        raise DataError(f"{meta_path}: not a qfl_qiskit circuit sidecar")
    inputs = ParameterVector(meta["inputs"]["vector"], len(meta["inputs"]["names"]))
    weights = ParameterVector(meta["weights"]["vector"], len(meta["weights"]["names"]))
    wanted = dict(zip(meta["inputs"]["names"] + meta["weights"]["names"], [*inputs, *weights]))
    by_name = {p.name: p for p in circuit.parameters}
    reverse = {q: n for n, q in meta.get("qasm_names", {}).items()}
    mapping = {}
    for p_name, param in by_name.items():
        logical = p_name if p_name in wanted else reverse.get(p_name)
        if logical not in wanted:
            raise DataError(f"{path}: parameter {p_name} is not in the sidecar's inputs or weights")
        mapping[param] = wanted[logical]
    if any(param is not new for param, new in mapping.items()):
        circuit = circuit.assign_parameters(mapping)
    observables = tuple(SparsePauliOp(o["paulis"], [complex(*c) for c in o["coeffs"]]) for o in meta["observables"])
    if meta.get("layout"):
        observables = tuple(op.apply_layout(circuit.layout, num_qubits=circuit.num_qubits) if circuit.layout
                            else op.apply_layout(meta["layout"]["final"], num_qubits=circuit.num_qubits)
                            for op in observables)
    return QnnCircuit(circuit, inputs, weights, observables, dict(meta.get("metadata") or {}))
