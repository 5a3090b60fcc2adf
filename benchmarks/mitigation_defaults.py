"""Which ZNE setting to make the default: every candidate (folding global / random / identity x scale factors
1,2,3 / 1,3,5 x Richardson / linear / exponential extrapolation) on the default QFL and MMA circuits under the
calibration noise of every fake backend with 5 to 7 qubits, against no mitigation.

    .venv/bin/python benchmarks/mitigation_defaults.py [--out results/mitigation_defaults.json] [--bindings 16]

Exact noisy expectation values (Aer density matrix, no shot noise), so a difference is the mitigation's. The
circuits are transpiled with the default strategy (best of native and preset). Prints one row per candidate:
mean over (backend, circuit) of mitigated / unmitigated mean absolute error, the worst such ratio, and on how
many pairs it made the error worse; the recommended default is the candidate with the lowest mean ratio among
those that never made it worse.
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from pathlib import Path

import numpy as np

FOLDINGS = ("global", "random", "identity")
FACTORS = ((1.0, 2.0, 3.0), (1.0, 3.0, 5.0))
FACTORIES = ("richardson", "linear", "exp")


def backend_rows(name: str, bindings: int) -> list[dict]:
    """Every candidate on the default circuits that fit backend ``name`` (one worker process per backend)."""
    warnings.filterwarnings("ignore")
    from qfl_qiskit.circuits import build_mma, build_qfl
    from qfl_qiskit.execution import AerEstimator, ExactEstimator, estimate, layout_observables
    from qfl_qiskit.mitigation import MitigatedEstimator
    from qfl_qiskit.specs import MMASpec, QFLSpec
    from qfl_qiskit.specs.mitigation import MitigationSpec
    from qfl_qiskit.specs.noise import BackendNoiseSpec
    from qfl_qiskit.transpile import resolve_backend, transpile_sweep

    circuits = {"qfl_default": build_qfl(QFLSpec(modalities=6, features=2, degree=2)),
                "mma_default": build_mma(MMASpec())}
    backend = resolve_backend(name)
    rows = []
    for cname, qnn in circuits.items():
        if qnn.circuit.num_qubits > backend.num_qubits:
            continue
        isa, report = transpile_sweep(qnn.circuit, backend, seeds=2, name=name)
        rng = np.random.default_rng(0)
        inputs = rng.uniform(-np.pi, np.pi, (bindings, qnn.num_inputs))
        values = qnn.parameter_values(inputs, rng.uniform(-np.pi, np.pi, qnn.num_weights))
        order = [list(qnn.circuit.parameters).index(p) for p in isa.parameters]
        pub = (isa, layout_observables(isa, list(qnn.observables)), values[:, order])
        exact = estimate(ExactEstimator(), [(qnn.circuit, list(qnn.observables), values)])[0].evs
        aer = AerEstimator(noise=BackendNoiseSpec(backend=name), shots=None, seed=0)
        base = float(np.abs(estimate(aer, [pub])[0].evs - exact).mean())
        row = {"backend": name, "circuit": cname, "two_qubit_count": report.two_qubit_count,
               "strategy": report.strategy, "unmitigated": base, "zne": {}}
        for folding, factors, factory in itertools.product(FOLDINGS, FACTORS, FACTORIES):
            key = f"{folding} {','.join(f'{f:g}' for f in factors)} {factory}"
            spec = MitigationSpec(techniques=("zne",), scale_factors=factors, folding=folding, factory=factory)
            try:
                evs = estimate(MitigatedEstimator(aer, spec), [pub])[0].evs
                row["zne"][key] = float(np.abs(evs - exact).mean())
            except Exception as exc:  # an extrapolation that fails (exp on values near zero) is recorded
                row["zne"][key] = None
                row.setdefault("errors", {})[key] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


def main() -> None:
    warnings.filterwarnings("ignore")
    from concurrent.futures import ProcessPoolExecutor

    from qfl_qiskit.results.records import make_record, save_record
    from qfl_qiskit.transpile import fake_backend_classes

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="results/mitigation_defaults.json")
    parser.add_argument("--bindings", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="", help="comma-separated; default: every fake backend of 5-7 qubits")
    args = parser.parse_args()
    names = ([b for b in args.backends.split(",") if b] or
             sorted(n for n, cls in fake_backend_classes().items() if 5 <= cls().num_qubits <= 7))
    rows, start = [], time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for name, got in zip(names, pool.map(backend_rows, names, [args.bindings] * len(names))):
            rows.extend(got)
            for r in got:
                print(f"{name} {r['circuit']}: {r['two_qubit_count']} 2q gates, unmitigated {r['unmitigated']:.4f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    table = []
    for key in rows[0]["zne"]:
        ratios = [r["zne"][key] / r["unmitigated"] if r["zne"][key] is not None else np.inf for r in rows]
        table.append({"candidate": key, "mean_ratio": float(np.mean(ratios)), "worst_ratio": float(np.max(ratios)),
                      "worse_on": int(sum(x > 1 for x in ratios)), "pairs": len(ratios)})
    table.sort(key=lambda t: (t["worse_on"] > 0, t["mean_ratio"]))
    print(f"\n{len(rows)} (backend, circuit) pairs over {len(names)} backends; ratio = ZNE error / unmitigated error")
    print(f"{'candidate':32s} {'mean ratio':>10s} {'worst':>7s} {'worse on':>9s}")
    for t in table:
        print(f"{t['candidate']:32s} {t['mean_ratio']:10.3f} {t['worst_ratio']:7.3f} {t['worse_on']:5d}/{t['pairs']}")
    out = Path(args.out)
    save_record(make_record("mitigation_defaults", specs={}, seeds={"bindings_seed": 0},
                            payload={"backends": names, "rows": rows, "table": table,
                                     "seconds": time.perf_counter() - start}), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
