"""Forward + gradient benchmark of the reference model, four stacks in one process, with ratios.

Reference model (../shared/PITFALLS.md): 10 qubits, RY encoding of 10 inputs, ``real_amplitudes(10, reps=9)``
(100 weights), observable Z on qubit 0, batch 32; one forward pass and the gradient with respect to the weights AND
the inputs. Peers, each in its fastest documented configuration:

- qfl-qiskit exact: ``QuantumLayer`` with the torch statevector, autograd (complex128 and complex64);
- qfl-qiskit Aer param-shift: ``QuantumLayer(gradient="param_shift")`` on exact Aer (all shifts in one call);
- qiskit-machine-learning: ``EstimatorQNN`` (input_gradients=True, default_precision=0) + ``TorchConnector``,
  default gradient (parameter shift);
- PennyLane ``lightning.qubit`` adjoint with the torch interface (optional: ``pip install -e .[bench]``).

Also: a scaling table of the exact path from 4 to 20 qubits (time per batch gradient, peak memory of a fresh
process); a QFL table (:data:`QFL_ROWS`: the default model and the papers' scales, ours against lightning adjoint on
the identical gate list, :func:`qfl_table`); and the default QFL model's time per training step. Writes a JSON record to ``results/`` and prints tables.

Usage: ``python benchmarks/bench_gradients.py [--quick] [--repeats N] [--skip-qml] [--out results/]``
(``--quick`` shrinks the model to 4 qubits, reps 1, batch 4: a smoke run for the test suite, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def reference(n: int, reps: int):
    """The reference QnnCircuit: RY(x_i) on qubit i, then real_amplitudes(n, reps); Z on qubit 0."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.quantum_info import SparsePauliOp

    from qfl_qiskit.circuits import QnnCircuit

    x = ParameterVector("x", n)
    w = ParameterVector("w", n * (reps + 1))
    qc = QuantumCircuit(n)
    for i in range(n):
        qc.ry(x[i], i)
    # real_amplitudes(n, reps) written out as ry + cx (its default reverse-linear entanglement), so every stack
    # sees the same plain gates; a test checks it equals the library circuit
    for r in range(reps + 1):
        for i in range(n):
            qc.ry(w[r * n + i], i)
        if r < reps:
            for i in reversed(range(n - 1)):
                qc.cx(i, i + 1)
    obs = (SparsePauliOp.from_sparse_list([("Z", [0], 1.0)], n),)
    return QnnCircuit(qc, x, w, obs, {"kind": "reference"})


def timed(fn: Callable[[], Any], repeats: int, *, warmup: bool = True) -> float:
    """Median wall seconds of ``repeats`` calls (after one warm-up call unless the caller has just made one)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def ours(qnn, x: np.ndarray, w: np.ndarray, *, estimator, gradient: str) -> Callable[[], np.ndarray]:
    from qfl_qiskit.qnn import QuantumLayer

    layer = QuantumLayer(qnn, estimator=estimator, gradient=gradient)
    with torch.no_grad():
        layer.weights.copy_(torch.as_tensor(w))

    def step() -> np.ndarray:
        xs = torch.tensor(x, requires_grad=True)
        layer.zero_grad()
        out = layer(xs)
        out.sum().backward()
        return np.concatenate([layer.weights.grad.numpy().ravel(), xs.grad.numpy().ravel()])

    return step


def qml_peer(qnn, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    from qiskit.primitives import StatevectorEstimator
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    est_qnn = EstimatorQNN(
        circuit=qnn.circuit, observables=list(qnn.observables), input_params=list(qnn.inputs),
        weight_params=list(qnn.weights), estimator=StatevectorEstimator(), input_gradients=True,
        default_precision=0.0,
    )
    model = TorchConnector(est_qnn, initial_weights=w)

    def step() -> np.ndarray:
        xs = torch.tensor(x, requires_grad=True)
        model.zero_grad()
        model(xs).sum().backward()
        return np.concatenate([model.weight.grad.numpy().ravel(), xs.grad.numpy().ravel()])

    return step


def pennylane_peer(n: int, reps: int, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    import pennylane as qml

    dev = qml.device("lightning.qubit", wires=n)

    @qml.qnode(dev, interface="torch", diff_method="adjoint")
    def circuit(inputs, weights):
        for i in range(n):
            qml.RY(inputs[..., i], wires=i)
        k = 0
        for r in range(reps + 1):  # real_amplitudes: RY layer, then reverse-linear CX, ..., final RY layer
            for i in range(n):
                qml.RY(weights[k], wires=i)
                k += 1
            if r < reps:
                for i in reversed(range(n - 1)):
                    qml.CNOT(wires=[i, i + 1])
        return qml.expval(qml.PauliZ(0))

    weights = torch.tensor(w, requires_grad=True)

    def step() -> np.ndarray:
        xs = torch.tensor(x, requires_grad=True)
        weights.grad = None
        circuit(xs, weights).sum().backward()  # broadcast over the batch (split into tapes for adjoint)
        return np.concatenate([weights.grad.numpy().ravel(), xs.grad.numpy().ravel()])

    return step


def in_fresh_process(function: str, *args: Any) -> Any:
    """``function(*args)`` of this module run in a new Python process; its printed lines are passed on, its
    result comes back as JSON."""
    code = ("import json, sys, warnings; sys.path.insert(0, %r); warnings.filterwarnings('ignore')\n"
            "from benchmarks import bench_gradients as b\n"
            "print('RESULT ' + json.dumps(b.%s(*json.loads(sys.argv[1]))))\n") % (str(ROOT), function)
    res = subprocess.run([sys.executable, "-c", code, json.dumps(list(args))], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{function} failed in its process:\n{res.stderr[-2000:]}")
    lines = res.stdout.splitlines()
    for line in lines[:-1]:
        print(line, flush=True)
    return json.loads(lines[-1].removeprefix("RESULT "))


def scaling_point(n: int, batch: int, repeats: int) -> dict[str, float]:
    """Time per batch gradient and peak RSS of a fresh process (:func:`in_fresh_process`) for an n-qubit
    reference model (reps = 3)."""
    return in_fresh_process("scaling_measure", n, batch, repeats)


def scaling_measure(n: int, batch: int, repeats: int) -> dict[str, float]:
    """The measurement of :func:`scaling_point`, in its own process: peak RSS is the kernel's VmHWM of this
    process (ru_maxrss would carry the parent's peak across exec on Linux), "extra" its growth after the imports."""
    from qfl_qiskit.execution.exact import ExactEstimator

    def hwm() -> int:
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("VmHWM")).split()[1])

    q = reference(n, 3)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, q.num_inputs))
    w = rng.uniform(-1, 1, q.num_weights)
    base = hwm()
    t = timed(ours(q, x, w, estimator=ExactEstimator(), gradient="autograd"), repeats)
    peak = hwm()
    return {"seconds": t, "peak_mib": peak / 1024, "extra_mib": (peak - base) / 1024}


#: Feature sizes of the six views of UCI Multiple Features, the quickstart's data set.
UCI_MFEAT_DIMS = (76, 216, 64, 240, 47, 6)


def qfl_training_step(repeats: int) -> float:
    """Seconds per training step of the default QFL model as ``qfl train`` builds it (``QFLFusion`` with its
    default options on the quickstart's six views: per-modality encoders, the QFL layer on the exact simulator with
    autograd, a linear head), batch 32: forward, cross-entropy, backward and an Adam step (the training loop's
    optimiser)."""
    from qfl_qiskit.models.quantum import QFLFusion

    model = QFLFusion(UCI_MFEAT_DIMS, 10)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, fused=True)  # as training.loop.fit
    rng = np.random.default_rng(0)
    xs = [torch.tensor(rng.normal(size=(32, d)), dtype=torch.float32) for d in UCI_MFEAT_DIMS]
    y = torch.tensor(rng.integers(0, 10, 32))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xs), y).backward()
        opt.step()

    return timed(step, repeats)


#: QFL rows of the QFL table: (modalities M, features D, degree P); the first is the default model, the others the
#: papers' scales (12-lead ECG, 207-sensor Traffic-LA).
QFL_ROWS = [(6, 2, 2), (12, 4, 3), (207, 1, 2), (12, 8, 4)]


def plain_gates(qnn) -> tuple[list[tuple[str, list[int], np.ndarray, float]], int]:
    """The circuit's gates in order as (name, qubits, coefficients, constant): a rotation's angle is
    ``coefficients @ [inputs, weights] + constant``. Both stacks of the QFL table run exactly this list (our
    simulator through the circuit, PennyLane through :func:`pennylane_gate_peer`); a test checks it rebuilds the
    circuit's operator. Returns the list and the number of parameters."""
    from qiskit.circuit import ParameterExpression

    params = [*qnn.inputs, *qnn.weights]
    index = {p: i for i, p in enumerate(params)}
    out = []
    for inst in qnn.circuit.data:
        name, qubits = inst.operation.name, [qnn.circuit.find_bit(q).index for q in inst.qubits]
        row, const = np.zeros(len(params)), 0.0
        if name in ("rx", "ry", "rz"):
            angle = inst.operation.params[0]
            if isinstance(angle, ParameterExpression) and angle.parameters:
                for p in angle.parameters:
                    row[index[p]] = float(angle.gradient(p))
                const = float(angle.bind({p: 0.0 for p in angle.parameters}))
            else:
                const = float(angle)
        elif name not in ("h", "x", "cx", "cz"):
            raise ValueError(f"plain_gates: gate {name!r} is not one of rx, ry, rz, h, x, cx, cz")
        out.append((name, qubits, row, const))
    return out, len(params)


def pennylane_gate_peer(qnn, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    """PennyLane ``lightning.qubit`` adjoint (torch interface) on the gate list of :func:`plain_gates`, the K
    observables of ``qnn`` as Pauli words; the gradient of the sum of all outputs over the batch with respect to
    the weights and the inputs, like :func:`ours`."""
    import pennylane as qml

    gates, _ = plain_gates(qnn)
    n = qnn.circuit.num_qubits
    rotating = [g for g, (name, *_rest) in enumerate(gates) if name in ("rx", "ry", "rz")]
    A = torch.tensor(np.stack([gates[g][2] for g in rotating]))
    b = torch.tensor([gates[g][3] for g in rotating], dtype=torch.float64)
    column = {g: i for i, g in enumerate(rotating)}
    ops = {"rx": qml.RX, "ry": qml.RY, "rz": qml.RZ, "h": qml.Hadamard, "x": qml.PauliX, "cx": qml.CNOT,
           "cz": qml.CZ}
    paulis = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}

    def word(label: str):
        factors = [paulis[c](n - 1 - i) for i, c in enumerate(label) if c != "I"]  # Qiskit labels: qubit 0 last
        return qml.prod(*factors) if len(factors) > 1 else (factors[0] if factors else qml.Identity(0))

    observables = [qml.dot([float(c.real) for c in op.coeffs], [word(p.to_label()) for p in op.paulis])
                   for op in qnn.observables]
    dev = qml.device("lightning.qubit", wires=n)

    @qml.qnode(dev, interface="torch", diff_method="adjoint")
    def circuit(inputs, weights):
        angles = torch.cat([inputs, weights.expand(inputs.shape[0], -1)], -1) @ A.T + b
        for g, (name, qubits, _, _) in enumerate(gates):
            if g in column:
                ops[name](angles[..., column[g]], wires=qubits)
            else:
                ops[name](wires=qubits)
        return [qml.expval(o) for o in observables]

    weights = torch.tensor(w, requires_grad=True)

    def step() -> np.ndarray:
        xs = torch.tensor(x, requires_grad=True)
        weights.grad = None
        out = circuit(xs, weights)
        sum(o.sum() for o in out).backward()
        return np.concatenate([weights.grad.numpy().ravel(), xs.grad.numpy().ravel()])

    return step


def qfl_table(repeats: int, quick: bool) -> list[dict[str, Any]]:
    """Forward + gradient (weights and inputs) of QFL circuits at the papers' scales, ours against PennyLane
    lightning adjoint on the identical gate list, batch 32, K = 8 observables. Timed in rounds (ours as a burst,
    PennyLane one call; at most 3 rounds where one PennyLane call takes over a second)."""
    from qfl_qiskit.circuits import build_qfl
    from qfl_qiskit.execution.exact import ExactEstimator
    from qfl_qiskit.specs import QFLSpec

    shapes, batch = ([(2, 1, 1), (3, 2, 2)], 4) if quick else (QFL_ROWS, 32)
    out = []
    for m, d, p in shapes:
        qnn = build_qfl(QFLSpec(modalities=m, features=d, degree=p))
        rng = np.random.default_rng(1234)
        x = rng.uniform(-np.pi, np.pi, (batch, qnn.num_inputs))
        w = rng.uniform(-np.pi, np.pi, qnn.num_weights)
        row: dict[str, Any] = {"modalities": m, "features": d, "degree": p, "batch": batch,
                               "qubits": qnn.circuit.num_qubits, "gates": len(qnn.circuit.data)}
        t0 = time.perf_counter()
        mine = ours(qnn, x, w, estimator=ExactEstimator(), gradient="autograd")
        grad = mine()
        row["ours_first_call_s"] = time.perf_counter() - t0  # compile + first run
        try:
            peer = pennylane_gate_peer(qnn, x, w)
        except ImportError:
            peer = None
            print("PennyLane not installed: `pip install -e .[bench]` to include it in the QFL table")
        if peer is not None:
            t0 = time.perf_counter()
            row["max_grad_diff"] = float(np.max(np.abs(peer() - grad)))
            first = time.perf_counter() - t0
        burst = 1 if quick else max(1, min(50, int(0.3 / max(timed(mine, 1, warmup=False), 1e-4))))
        rounds = 1 if quick else (repeats if peer is None or first < 1.0 else min(repeats, 3))
        ours_s, peer_s = [], []
        for _ in range(rounds):
            ours_s.append(timed(mine, burst, warmup=False))
            if peer is not None:
                peer_s.append(timed(peer, 1, warmup=False))
        row["ours_s"] = float(np.median(ours_s))
        if peer is not None:
            row["pennylane_s"] = float(np.median(peer_s))
            row["ratio"] = row["pennylane_s"] / row["ours_s"]
            per_round = np.array(peer_s) / np.array(ours_s)
            row["ratio_range"] = [float(per_round.min()), float(per_round.max())]
        print(f"  QFL M={m}, D={d}, P={p}: ours {row['ours_s'] * 1000:.2f} ms"
              + (f", lightning adjoint {row['pennylane_s']:.3f} s ({row['ratio']:.0f}x)" if peer else ""),
              flush=True)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-qml", action="store_true", help="skip qiskit-machine-learning (about 2 minutes)")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*TorchConnector.*")

    from qfl_qiskit.execution.aer import AerEstimator
    from qfl_qiskit.execution.exact import ExactEstimator
    from qfl_qiskit.results import make_record, save_record, utc_stamp

    n, reps, batch = (4, 1, 4) if args.quick else (10, 9, 32)
    repeats = 1 if args.quick else args.repeats
    qnn = reference(n, reps)
    rng = np.random.default_rng(1234)
    x = rng.uniform(-np.pi, np.pi, (batch, n))
    w = rng.uniform(-np.pi, np.pi, qnn.num_weights)

    peers: dict[str, Callable[[], np.ndarray]] = {
        "qfl-qiskit exact (autograd, complex128)": ours(qnn, x, w, estimator=ExactEstimator(), gradient="autograd"),
        "qfl-qiskit exact (autograd, complex64)": ours(qnn, x, w, estimator=ExactEstimator(precision="complex64"),
                                                       gradient="autograd"),
        "qfl-qiskit Aer param-shift (one call)": ours(qnn, x, w, estimator=AerEstimator(), gradient="param_shift"),
    }
    try:
        peers["PennyLane lightning.qubit adjoint"] = pennylane_peer(n, reps, x, w)
    except ImportError:
        print("PennyLane not installed: `pip install -e .[bench]` to include it")
    if not args.skip_qml:
        peers["qiskit-machine-learning EstimatorQNN (param-shift)"] = qml_peer(qnn, x, w)

    reference_grad = None
    rows = []
    first: dict[str, float] = {}
    for name, step in peers.items():
        grad = step()  # also the warm-up call (it compiles / builds, so it is not timed)
        if "qiskit-machine-learning" not in name:
            first[name] = timed(step, 1, warmup=False)  # sets the burst length below
        if reference_grad is None:
            reference_grad = grad
        rows.append({"stack": name, "max_grad_diff_vs_exact": float(np.max(np.abs(grad - reference_grad)))})
    # Rounds: in each, every stack is timed in turn, so a slow spell of the machine hits all of them alike; a stack
    # reports the median over rounds. A fast stack is timed as a burst of calls after a warm-up call (its steady
    # state in a training loop, not a cold first call after another library ran); qiskit-machine-learning takes
    # minutes per call: one call.
    fast = [r for r in rows if "qiskit-machine-learning" not in r["stack"]]
    for _ in range(repeats):
        for r in fast:
            burst = 1 if args.quick else max(1, min(20, int(0.3 / first[r["stack"]])))
            r.setdefault("round_seconds", []).append(timed(peers[r["stack"]], burst, warmup=burst > 1))
    for r in rows:
        if "round_seconds" not in r:
            r["round_seconds"] = [timed(peers[r["stack"]], 1, warmup=False)]
        r["seconds"] = float(np.median(r["round_seconds"]))
        print(f"  {r['stack']}: {r['seconds']:.4f} s", flush=True)
    base = rows[0]
    for r in rows:
        r["ratio_vs_exact"] = r["seconds"] / base["seconds"]
        if len(r["round_seconds"]) == len(base["round_seconds"]):  # same rounds: the ratio's spread
            per_round = np.array(r["round_seconds"]) / np.array(base["round_seconds"])
            r["ratio_range"] = [float(per_round.min()), float(per_round.max())]

    sizes = [4, 6] if args.quick else [4, 8, 12, 16, 18, 20]
    scaling_batch = 4 if args.quick else 8  # autograd keeps every intermediate state: 20 qubits x 32 would not fit
    scaling = []
    for size in sizes:
        point = scaling_point(size, scaling_batch, repeats)
        scaling.append({"qubits": size, **point})
        print(f"  exact path, {size} qubits: {point['seconds']:.4f} s, +{point['extra_mib']:.0f} MiB", flush=True)

    # the QFL table and the training step each in a fresh process: after Aer's and qiskit-machine-learning's
    # multi-threaded runs above, small torch ops in the same process measured up to 2x slower (two OpenMP
    # runtimes on two cores), which would charge our stack for the peers' threads
    qfl_rows = in_fresh_process("qfl_table", repeats, args.quick)
    qfl_step = in_fresh_process("qfl_training_step", 1 if args.quick else 100)
    _print(rows, scaling, qfl_rows, qfl_step)
    record = make_record(
        "benchmark_gradients",
        specs={"benchmark": {"qubits": n, "reps": reps, "batch": batch, "repeats": repeats, "quick": args.quick,
                             "scaling_batch": scaling_batch, "scaling_reps": 3}},
        seeds={"data": 1234},
        payload={"peers": rows, "scaling": scaling, "qfl": qfl_rows, "qfl_default_train_step_s": qfl_step,
                 "torch_threads": torch.get_num_threads()},
    )
    path = save_record(record, args.out / f"benchmark_gradients_{utc_stamp()}.json")
    print(f"wrote {path}")
    return record


def _print(rows: list[dict], scaling: list[dict], qfl_rows: list[dict], qfl_step: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(132, Console().width))  # the stack names are long: never wrap the table
    t = Table(title="Reference model: forward + gradient (weights and inputs), median seconds")
    for col in ("stack", "seconds", "x slower than exact", "range over rounds", "max |grad diff|"):
        t.add_column(col, justify="left" if col == "stack" else "right")
    for r in rows:
        spread = "{:.1f} to {:.1f}".format(*r["ratio_range"]) if "ratio_range" in r else "one call"
        t.add_row(r["stack"], f"{r['seconds']:.4f}", f"{r['ratio_vs_exact']:.1f}", spread,
                  f"{r['max_grad_diff_vs_exact']:.1e}")
    console.print(t)
    s = Table(title="Exact path scaling: forward + gradient, real_amplitudes reps=3, fresh process each")
    for col in ("qubits", "seconds", "peak RSS MiB", "above imports MiB"):
        s.add_column(col, justify="right")
    for p in scaling:
        s.add_row(str(p["qubits"]), f"{p['seconds']:.4f}", f"{p['peak_mib']:.0f}", f"{p['extra_mib']:.0f}")
    console.print(s)
    q = Table(title="QFL circuits: forward + gradient (weights and inputs), identical gate list, median seconds")
    for col in ("M, D, P", "qubits", "gates", "batch", "ours", "ours first call", "lightning adjoint",
                "x faster", "range over rounds", "max |grad diff|"):
        q.add_column(col, justify="right")
    for r in qfl_rows:
        has = "ratio" in r
        q.add_row(f"{r['modalities']}, {r['features']}, {r['degree']}", str(r["qubits"]), str(r["gates"]),
                  str(r["batch"]), f"{r['ours_s'] * 1000:.2f} ms", f"{r['ours_first_call_s']:.2f} s",
                  f"{r['pennylane_s']:.3f} s" if has else "not installed", f"{r['ratio']:.0f}" if has else "-",
                  "{:.0f} to {:.0f}".format(*r["ratio_range"]) if has else "-",
                  f"{r['max_grad_diff']:.1e}" if has else "-")
    console.print(q)
    console.print(f"default QFL model (exact, batch 32): {qfl_step * 1000:.1f} ms per training step")


if __name__ == "__main__":
    main()
