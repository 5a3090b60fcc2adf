"""Size limits, checked in the specs before anything is allocated: what fits this toolkit's simulators and a
workstation-sized machine. Each limit names itself in the refusal, so a user knows what to shrink.

Layer-neutral (like ``errors``): plain numbers and arithmetic, no qiskit or torch.

Why these numbers (measured on a 2-core, 24 GB machine):

- ``MAX_QUBITS = 24``: the exact simulator keeps a (batch, 2^n) complex128 state plus the states autograd saves;
  at 24 qubits one batch row is 256 MB, so a batch of 32 with its saved states already exceeds 24 GB.
- ``MAX_CIRCUIT_GATES = 200_000``: building a 200k-gate QFL in qiskit takes about 2 s and 0.3 GB; a QFL's gate
  count grows as P * 2^(index qubits), so a mistyped degree or modality count otherwise builds for minutes.
- ``MAX_BACKEND_QUBITS = 1_200``: a generic backend of n qubits builds its full coupling target (n^2 memory in
  the transpiler's distance matrix); IBM's largest devices have 156 (Heron) and 1,121 (Condor) qubits.
- ``MAX_TRANSPILE_SEEDS = 256``: each seed is a full level-3 transpilation.
- ``MAX_DATA_VALUES = 2**28``: samples x features of a generated data set in float64 (2 GB).
- ``MAX_BINDINGS = 100_000``: parameter bindings of one estimator call (values, folded copies, results).
- ``MAX_SWEEP_CELLS = 100_000``, ``MAX_SEEDS = 1_000``: cells and seeds of a sweep.
"""

from __future__ import annotations

import math

MAX_QUBITS = 24
MAX_CIRCUIT_GATES = 200_000
MAX_BACKEND_QUBITS = 1_200
MAX_TRANSPILE_SEEDS = 256
MAX_DATA_VALUES = 2**28
MAX_BINDINGS = 100_000
MAX_SWEEP_CELLS = 100_000
MAX_SEEDS = 1_000
MAX_OBSERVABLES = 10_000
MAX_WIDTH = 65_536  # hidden sizes, ranks, output widths of classical layers


def qfl_index_qubits(slots: int) -> int:
    """Index qubits addressing ``slots`` feature slots plus one constant slot: ceil(log2(slots + 1))."""
    return max(1, math.ceil(math.log2(slots + 1)))


def qfl_qubits(modalities: int, features: int) -> int:
    """Qubits of a QFL circuit: the index register plus the value qubit."""
    return qfl_index_qubits(modalities * features) + 1


def qfl_size(modalities: int, features: int, degree: int, layers: int) -> tuple[int, int]:
    """(qubits, gates) of a QFL circuit, computed without building it (an upper bound on the gates)."""
    n = qfl_qubits(modalities, features)
    k = n - 1
    encoding = 2 * 2**k  # Gray-code uniformly controlled RY: 2^k RY + 2^k CX
    block = layers * (3 * n + n)  # Rx, Ry, Rz per qubit + at most n CX (full entanglement: more, below)
    full = layers * (3 * n + n * (n - 1) // 2)
    return n, k + degree * (encoding + max(block, full))


def check_qfl(modalities: int, features: int, degree: int, layers: int) -> str | None:
    """Why a QFL of this size cannot be built or simulated here (None when it fits)."""
    if modalities * features > 2**MAX_QUBITS:  # checked first: the size arithmetic below stays small
        return (f"modalities x features = {modalities * features} needs more than {MAX_QUBITS} index qubits "
                f"(limit {MAX_QUBITS} qubits)")
    qubits, gates = qfl_size(modalities, features, degree, layers)
    if qubits > MAX_QUBITS:
        return f"the QFL needs {qubits} qubits; the limit is {MAX_QUBITS} (reduce modalities x features)"
    if gates > MAX_CIRCUIT_GATES:
        return (f"the QFL would have about {gates:,} gates (degree {degree} x 2^{qubits - 1} encoding gates); "
                f"the limit is {MAX_CIRCUIT_GATES:,} (reduce degree, layers or modalities x features)")
    return None


def mma_layers(encoding_layers: int, trainable_layers: int, fusion_layers: int) -> int:
    """Gate layers of an MMA circuit: each upload encodes then runs its trainable block; each fusion layer
    entangles then rotates."""
    return encoding_layers * (1 + trainable_layers) + 2 * fusion_layers


def check_mma(modalities: int, qubits_per_modality: int, layers: int) -> str | None:
    """Why an MMA circuit of this size cannot be built or simulated here (None when it fits)."""
    qubits = modalities * qubits_per_modality
    if qubits > MAX_QUBITS:
        return (f"the MMA circuit needs {qubits} qubits (modalities x qubits_per_modality); the limit is "
                f"{MAX_QUBITS}")
    gates = layers * qubits * (qubits + 4)
    if gates > MAX_CIRCUIT_GATES:
        return f"the MMA circuit would have about {gates:,} gates; the limit is {MAX_CIRCUIT_GATES:,}"
    return None


def check_data_values(n: int, modalities: int, features: int) -> str | None:
    """Why a generated data set of n samples x modalities x features cannot be allocated (None when it fits)."""
    values = n * modalities * features
    if values > MAX_DATA_VALUES:
        return (f"n x num_modalities x features = {values:,} values exceeds the limit of {MAX_DATA_VALUES:,} "
                "(2 GB in float64); use a smaller n or fewer features")
    return None


def check_backend_name(name: str) -> str | None:
    """Why a backend name cannot be built here (None when it may be): ``generic_<n>`` beyond the limit."""
    import re

    match = re.fullmatch(r"generic_(\d+)", name)
    if match and int(match.group(1)) > MAX_BACKEND_QUBITS:
        return (f"{name}: at most {MAX_BACKEND_QUBITS} qubits for a generic backend (its target and distance "
                "matrix grow as n^2); use a smaller n")
    return None


#: Amplitudes of one batched state (rows x 2^qubits) the exact simulator may hold per gate step while training;
#: with the states kept for the backward pass, 2^24 (256 MB in complex128) stays within a few GB.
MAX_BATCH_AMPLITUDES = 2**24
#: Parameters of a classical fusion model (float32: 200 MB of weights, more with Adam's moments).
MAX_MODEL_PARAMETERS = 50_000_000


def check_batch_state(qubits: int, rows: int) -> str | None:
    """Why ``rows`` states of ``qubits`` qubits at once cannot be simulated while training (None when they fit)."""
    amplitudes = rows * 2**qubits
    if amplitudes > MAX_BATCH_AMPLITUDES:
        return (f"{rows} rows x 2^{qubits} amplitudes = {amplitudes:,} per state exceed the limit of "
                f"{MAX_BATCH_AMPLITUDES:,} (the exact simulator keeps such states for the gradient); use a smaller "
                "batch_size or fewer qubits")
    return None


def classical_parameters(name: str, modalities: int, features: int, *, out: int = 0, rank: int = 0, factor: int = 0,
                         hidden: int = 0, layers: int = 0, max_tensor: int = 0) -> int:
    """An upper estimate of a classical fusion step's parameter count, computed without building it."""
    if name == "concat":
        return modalities * features * out + out
    if name == "tfn":
        return max_tensor * out
    if name == "lmf":
        return modalities * (features + 1) * rank * out + out
    if name == "mfb":
        return modalities * features * factor * out
    if name == "gcn":
        return features * hidden + layers * hidden * hidden
    return 0
