"""Aer noise models from noise specs: backend calibration noise (live or snapshot) and parametric noise, scaled.

Scaling by lambda (``spec.scale``) multiplies every error rate by lambda:

- gate errors (the average gate infidelity each calibrated gate reports) become ``lambda * e``;
- readout errors become ``lambda * e``;
- relaxation rates 1/T1 and 1/T2 are multiplied by lambda, i.e. T1 and T2 are divided by it (T2 <= 2 T1 is kept);
- durations do not change.

Above lambda = 1 a probability can exceed what is physical, so it is clipped at the point of maximal noise:
an n-qubit gate error at ``1 - 2**-n`` (the completely depolarizing channel: 1/2 for 1q, 3/4 for 2q gates) and a
readout error at 1/2 (the outcome no longer depends on the state). lambda = 1 leaves the calibration untouched
and lambda = 0 gives ``None`` (noiseless). Aer then splits each gate error into thermal relaxation for the gate
duration plus the depolarizing part that makes up the rest, exactly as ``NoiseModel.from_backend`` does: the
model is ``from_backend`` of a copy of the backend's target with scaled numbers.

Backend models can be built for a subset of physical qubits (the active qubits of an ISA circuit), remapped to
``0 .. len(qubits)-1`` in the order given, which keeps a 156-qubit backend cheap to simulate. Models are cached
per (calibration source, scale, qubits): treat a returned model as read-only (copy it before changing it).
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qfl_qiskit.errors import NoiseError
from qfl_qiskit.noise.calibration import live_calibration, load_snapshot
from qfl_qiskit.specs.noise import BackendNoiseSpec, ParametricNoiseSpec

if TYPE_CHECKING:
    from qiskit.transpiler import Target
    from qiskit_aer.noise import NoiseModel

#: Readout errors are clipped here when scaled up: beyond 1/2 a readout error anti-correlates, it is not noisier.
READOUT_ERROR_CAP = 0.5
_CACHE_SIZE = 64
_cache: OrderedDict[tuple, Any] = OrderedDict()
_lock = threading.Lock()


def gate_error_cap(num_qubits: int) -> float:
    """Largest scaled gate error: the average infidelity ``1 - 2**-n`` of the completely depolarizing channel."""
    return 1.0 - 2.0**-num_qubits


def scale_probability(p: float | None, scale: float, cap: float) -> float | None:
    """``scale * p`` clipped at ``cap``; ``p`` itself (even above the cap) when ``scale == 1``."""
    if p is None or scale == 1.0:
        return p
    return min(p * scale, cap)


def noise_model(
    spec: BackendNoiseSpec | ParametricNoiseSpec, *, qubits: Sequence[int] | None = None
) -> NoiseModel | None:
    """Build (or fetch from the cache) the Aer noise model of a noise spec.

    Args:
        spec: A backend or parametric noise spec; its ``scale`` is applied as the module docstring says.
        qubits: Physical qubits of the backend to model, in the order of the simulated qubits
            (e.g. the active qubits of an ISA circuit); the model acts on ``0 .. len(qubits)-1``.
            None models every backend qubit. Parametric models are the same on every qubit and ignore it.

    Returns:
        The noise model, or None when ``spec.scale == 0`` or the spec has no errors at all (noiseless).

    Raises:
        NoiseError: Bad qubits, a snapshot of another backend, or an unreadable snapshot.
        BackendError: Unknown backend name.
    """
    if spec.scale == 0:
        return None
    if isinstance(spec, ParametricNoiseSpec):
        return _parametric_model(spec)
    if not isinstance(spec, BackendNoiseSpec):
        raise NoiseError(f"not a noise spec: {type(spec).__name__}; use BackendNoiseSpec or ParametricNoiseSpec")
    source, calibration = _calibration(spec)
    chosen = _check_qubits(qubits, calibration, spec.backend)
    key = (source, spec.scale, chosen)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = _backend_model(calibration, chosen, spec.scale)
    with _lock:
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def calibration_target(
    calibration: dict[str, Any], *, qubits: Sequence[int] | None = None, scale: float = 1.0
) -> Target:
    """A ``Target`` holding the (scaled) calibration of the given physical qubits, remapped to ``0 .. m-1``.

    Only instructions whose qubits all lie in ``qubits`` are kept. Instruction names that Qiskit's standard gate
    library does not know are left out with a warning (they would carry no noise).
    """
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.providers import QubitProperties
    from qiskit.transpiler import InstructionProperties, Target

    chosen = tuple(range(calibration["num_qubits"])) if qubits is None else tuple(qubits)
    index = {phys: i for i, phys in enumerate(chosen)}
    props = []
    for phys in chosen:
        q = calibration["qubits"][phys]
        t1 = None if q["t1"] is None else q["t1"] / scale  # x / 1.0 == x exactly: lambda = 1 changes nothing
        t2 = None if q["t2"] is None else q["t2"] / scale
        props.append(QubitProperties(t1=t1, t2=t2, frequency=q["frequency"]))
    target = Target(num_qubits=len(chosen), dt=calibration.get("dt"), qubit_properties=props)
    library = get_standard_gate_name_mapping()
    unknown = []
    for name, rows in calibration["instructions"].items():
        if name not in library:
            unknown.append(name)
            continue
        entries = {}
        for row in rows:
            if not all(q in index for q in row["qubits"]):
                continue
            n = len(row["qubits"])
            cap = READOUT_ERROR_CAP if name == "measure" else gate_error_cap(n)
            entries[tuple(index[q] for q in row["qubits"])] = InstructionProperties(
                duration=row["duration"], error=scale_probability(row["error"], scale, cap)
            )
        if entries:
            target.add_instruction(library[name], entries)
    if unknown:
        warnings.warn(f"{calibration['backend']}: no noise for unknown instructions {sorted(unknown)}",
                      stacklevel=2)
    return target


def _calibration(spec: BackendNoiseSpec) -> tuple[tuple, dict[str, Any]]:
    """The calibration a backend spec names, with a cache key for its source."""
    if spec.snapshot is None:
        return ("backend", spec.backend), live_calibration(spec.backend)
    path = Path(spec.snapshot).expanduser().resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None  # load_snapshot reports the missing file
    data = _snapshot(str(path), stamp)
    if data["backend"] != spec.backend:
        raise NoiseError(f"{spec.snapshot} is a snapshot of '{data['backend']}', not of '{spec.backend}'; "
                         f"set backend = \"{data['backend']}\" or use a snapshot of {spec.backend}")
    return ("snapshot", str(path), stamp), data


@lru_cache(maxsize=16)
def _snapshot(path: str, stamp: int | None) -> dict[str, Any]:
    return load_snapshot(path)


def _check_qubits(qubits: Sequence[int] | None, calibration: dict[str, Any], name: str) -> tuple[int, ...]:
    n = calibration["num_qubits"]
    if qubits is None:
        return tuple(range(n))
    chosen = tuple(int(q) for q in qubits)
    if not chosen:
        raise NoiseError("qubits is empty; give at least one physical qubit (or None for all)")
    if len(set(chosen)) != len(chosen):
        raise NoiseError(f"qubits {list(chosen)} repeat a qubit; give distinct physical qubits")
    bad = [q for q in chosen if not 0 <= q < n]
    if bad:
        raise NoiseError(f"qubits {bad} are not on {name} (qubits 0..{n - 1}); check the circuit's backend")
    return chosen


def _backend_model(calibration: dict[str, Any], qubits: tuple[int, ...], scale: float) -> NoiseModel:
    from qiskit_aer.noise import NoiseModel

    target = calibration_target(calibration, qubits=qubits, scale=scale)
    backend = _calibrated_backend(calibration["backend"], target, calibration["operation_names"])
    return NoiseModel.from_backend(backend)


def _calibrated_backend(name: str, target: Target, operation_names: list[str]) -> Any:
    """A minimal ``BackendV2`` around a target, which is all ``NoiseModel.from_backend`` reads."""
    from qiskit.providers import BackendV2, Options

    class CalibratedBackend(BackendV2):
        def __init__(self) -> None:
            super().__init__(name=name, description="calibration data for a noise model")

        @property
        def target(self) -> Target:
            return target

        @property
        def operation_names(self) -> list[str]:  # the backend's own list, so the model's basis gates match it
            return list(operation_names)

        @property
        def max_circuits(self) -> None:
            return None

        @classmethod
        def _default_options(cls) -> Options:
            return Options()

        def run(self, run_input: Any, **options: Any) -> Any:
            raise NotImplementedError("a calibration holder cannot run circuits")

    return CalibratedBackend()


@lru_cache(maxsize=32)
def _parametric_model(spec: ParametricNoiseSpec) -> NoiseModel | None:
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error, thermal_relaxation_error

    lam = spec.scale
    p1 = scale_probability(spec.depolarizing_1q, lam, 1.0)
    p2 = scale_probability(spec.depolarizing_2q, lam, 1.0)
    readout = scale_probability(spec.readout_error, lam, READOUT_ERROR_CAP)
    t1 = t2 = None
    if spec.t1_us is not None:
        t1 = spec.t1_us * 1e3 / lam  # ns, like the gate times
        t2 = (spec.t2_us * 1e3 / lam) if spec.t2_us is not None else 2 * t1

    def relax(gate_time_ns: float, width: int) -> Any:
        if t1 is None or gate_time_ns == 0:
            return None
        one = thermal_relaxation_error(t1, t2, gate_time_ns)
        return one if width == 1 else one.expand(one)

    model = NoiseModel()
    for gates, p, time_ns, width in ((spec.gates_1q, p1, spec.gate_time_1q_ns, 1),
                                     (spec.gates_2q, p2, spec.gate_time_2q_ns, 2)):
        depol = depolarizing_error(p, width) if p > 0 else None
        relaxation = relax(time_ns, width)
        error = depol.compose(relaxation) if depol and relaxation else (depol or relaxation)
        if error is not None and gates:
            model.add_all_qubit_quantum_error(error, list(gates))
    if readout > 0:
        model.add_all_qubit_readout_error(ReadoutError([[1 - readout, readout], [readout, 1 - readout]]))
    return None if model.is_ideal() else model
