"""``qfl circuit build``, ``qfl transpile-report`` and ``qfl quickstart``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, circuit_app, compact_table, console, emit_json, json_output
from qfl_qiskit.errors import CircuitError, QflError, SpecError
from qfl_qiskit.specs import MMASpec, QFLSpec, TranspileSpec, load_circuit_spec, validate

if TYPE_CHECKING:
    from qfl_qiskit.circuits import QnnCircuit

DEFAULT_BACKENDS = ["fake_torino", "fake_fez", "fake_sherbrooke"]


def parse_presence(text: str | None, spec: QFLSpec | MMASpec) -> tuple[bool, ...] | None:
    """Parse ``--present 1,0,1`` for an MMA spec (one 0/1 flag per modality)."""
    if text is None:
        return None
    if spec.kind != "mma":
        raise CircuitError("--present applies to MMA specs only; QFL circuits always load every modality")
    flags = [f.strip() for f in text.split(",")]
    if any(f not in {"0", "1"} for f in flags) or len(flags) != spec.modalities:
        raise CircuitError(
            f"--present needs {spec.modalities} comma-separated 0/1 flags (one per modality), got '{text}'"
        )
    if "1" not in flags:
        raise CircuitError(f"--present {text}: at least one modality must be present")
    return tuple(f == "1" for f in flags)


def artifact_stem(qnn: QnnCircuit) -> str:
    """File stem for a circuit's artifacts: spec id, plus the presence pattern of a partial MMA circuit."""
    presence = qnn.metadata.get("presence")
    if presence and not all(presence):
        return f"{qnn.metadata['spec_id']}_present-{''.join('1' if p else '0' for p in presence)}"
    return qnn.metadata["spec_id"]


def _load(spec_file: Path, present: str | None) -> tuple[QFLSpec | MMASpec, QnnCircuit]:
    spec = load_circuit_spec(spec_file)
    presence = parse_presence(present, spec)
    from qfl_qiskit.circuits import build_circuit  # qiskit is imported only once the input is known to be good

    return spec, build_circuit(spec, presence)


def _check_suffix(path: Path | None, suffix: str, option: str) -> None:
    if path is not None and path.suffix.lower() != suffix:
        raise QflError(f"{option} {path}: expected a {suffix} file name")


@circuit_app.command("build")
def circuit_build(
    spec_file: Path = typer.Argument(..., help="Circuit spec TOML (kind = \"qfl\" or \"mma\")."),
    out_dir: Path = typer.Option(Path("circuits/build"), "--out-dir", help="Where QPY and QASM files go."),
    draw: Path | None = typer.Option(None, "--draw", help="Also draw the circuit to this PNG."),
    draw_level: str = typer.Option("blocks", "--draw-level", help="blocks: S(x), U(theta), encodings and fusion "
                                   "as labelled boxes; gates: every gate."),
    present: str | None = typer.Option(None, "--present", help="MMA only: presence flags, e.g. 1,0,1."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Build a circuit from its spec: print a summary, export QPY + OpenQASM 3 (and a PNG drawing)."""
    from qfl_qiskit.atomic import Stage, require_writable_dir, require_writable_file

    json_output(as_json)
    _check_suffix(draw, ".png", "--draw")
    if draw_level not in ("blocks", "gates"):
        raise SpecError(f"--draw-level must be blocks or gates, got '{draw_level}'")
    require_writable_dir(out_dir, what="--out-dir")
    if draw is not None:
        require_writable_file(draw, what="--draw")
    spec, qnn = _load(spec_file, present)
    from qfl_qiskit.circuits.export import export_circuit, sidecar

    stage = Stage()  # QPY, QASM and the drawing are written together, or none of them
    qpy_path, qasm_path = export_circuit(qnn.circuit, out_dir / artifact_stem(qnn), stage=stage,
                                         meta=sidecar(qnn, spec=spec))
    if draw is not None:
        stage.add(draw, _drawing(qnn, spec, level=draw_level))
    stage.commit()
    console.print(_summary(spec, qnn))
    console.print(f"wrote {qpy_path} and {qasm_path}" + (f" and {draw}" if draw else ""))
    if as_json:
        qc = qnn.circuit
        emit_json({"spec": {"spec_id": spec.spec_id, **spec.model_dump(mode="json")}, "qubits": qc.num_qubits,
                   "inputs": [p.name for p in qnn.inputs], "weights": [p.name for p in qnn.weights],
                   "depth": qc.depth(), "gates": dict(qc.count_ops()), "observables": qnn.metadata["observables"],
                   "presence": qnn.metadata.get("presence"),
                   "files": {"qpy": str(qpy_path), "qasm": str(qasm_path), "drawing": str(draw) if draw else None}})


def _drawing(qnn: QnnCircuit, spec: QFLSpec | MMASpec, *, level: str = "blocks") -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if level == "blocks":
        from qfl_qiskit.circuits.blocks import block_circuit

        fig = block_circuit(qnn, spec).draw("mpl", fold=-1)
    else:
        fig = qnn.circuit.draw("mpl", fold=60)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _summary(spec: QFLSpec | MMASpec, qnn: QnnCircuit) -> Table:
    qc = qnn.circuit
    table = Table(title=f"{spec.kind.upper()} circuit {spec.spec_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("qubits", str(qc.num_qubits)),
        ("inputs", str(qnn.num_inputs)),
        ("weights", str(qnn.num_weights)),
        ("depth", str(qc.depth())),
        ("gates", ", ".join(f"{k}: {v}" for k, v in qc.count_ops().items())),
        ("observables", f"{len(qnn.observables)}: {' '.join(qnn.metadata['observables'][:8])}"
                        + (" ..." if len(qnn.observables) > 8 else "")),
    ]
    if "presence" in qnn.metadata:
        rows.append(("presence", "".join("1" if p else "0" for p in qnn.metadata["presence"])))
    for k, v in rows:
        table.add_row(k, v)
    return table


def _report(
    spec: QFLSpec | MMASpec,
    qnn: QnnCircuit,
    tspec: TranspileSpec,
    *,
    json_path: Path | None,
    plot_path: Path | None,
    isa_dir: Path,
    results_dir: Path,
) -> dict:
    """Sweep, then write ISA circuits, the JSON record and the PNG; print the ranked table; return the record."""
    from rich.progress import Progress

    from qfl_qiskit.atomic import Stage, require_writable_dir, require_writable_file
    from qfl_qiskit.circuits.export import export_circuit, sidecar
    from qfl_qiskit.results import make_record, render_transpile_comparison, utc_stamp
    from qfl_qiskit.transpile import compare_backends

    require_writable_dir(isa_dir, what="--isa-dir")
    require_writable_dir(results_dir, what="--results-dir")
    for path, option in ((json_path, "--record"), (plot_path, "--plot")):
        if path is not None:
            require_writable_file(path, what=option)

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"transpiling ({tspec.seeds} seeds per backend)", total=len(tspec.backends))
        pairs = compare_backends(qnn.circuit, tspec, on_backend_done=lambda _: progress.advance(task))
    stem = f"transpile_{spec.kind}_{artifact_stem(qnn)}_{utc_stamp()}"
    json_path = json_path or results_dir / f"{stem}.json"
    plot_path = plot_path or json_path.with_suffix(".png")
    isa_stems = {rep.backend: isa_dir / f"{artifact_stem(qnn)}_{rep.backend}" for _, rep in pairs}
    record = make_record(
        "transpile_report",
        specs={"circuit": spec, "transpile": tspec},
        seeds={"observable_seed": spec.observable_seed, "seed_transpiler_first": 0,
               "seed_transpiler_count": tspec.seeds},
        payload={
            "presence": qnn.metadata.get("presence"),
            "reports": [r.model_dump(mode="json") for _, r in pairs],
            "isa_circuits": {b: {"qpy": f"{s}.qpy", "qasm": f"{s}.qasm"} for b, s in isa_stems.items()},
        },
    )
    stage = Stage()  # ISA circuits, record and plot are written together, or none of them
    for isa, rep in pairs:
        export_circuit(isa, isa_stems[rep.backend], stage=stage, meta=sidecar(qnn, isa, spec=spec))
    stage.add_json(json_path, record).add(plot_path, render_transpile_comparison(record))
    stage.commit()
    console.print(_report_table(spec, [r for _, r in pairs]))
    for _, r in pairs:
        for tool, a in r.anchors.items():
            console.print(f"anchor {tool} on {r.backend}: " + (a["skipped"] if "skipped" in a else
                          f"{a['two_qubit_count']} two-qubit gates, ESP {a['esp']:.4f} ({a['seconds']:.2f} s)"),
                          markup=False)
    console.print(f"wrote {json_path}, {plot_path} and ISA circuits under {isa_dir}/")
    return record


def _report_table(spec: QFLSpec | MMASpec, reports: list) -> Table:
    """Ranked backends, sized to fit an 80-column terminal (full figures are in the JSON record)."""
    table = compact_table(
        f"{spec.kind.upper()} {spec.spec_id}: best transpilation per backend, ranked by ESP",
        caption="2q: two-qubit gates (preset: the preset pass manager's best); us: scheduled duration; gain: ESP "
                "over the default (level 3, seed 0); kept: native (placement + bridges) or preset O/seed",
    )
    for col in ("backend", "2q", "preset", "2q depth", "swaps", "us", "ESP", "gain", "kept"):
        table.add_column(col, justify="left" if col == "backend" else "right", no_wrap=True)
    for r in reports:
        dur = "-" if r.estimated_duration_s is None else f"{r.estimated_duration_s * 1e6:.1f}"
        kept = "native" if r.strategy == "native" else f"{r.optimization_level}/{r.seed}"
        preset = "-" if r.preset_two_qubit_count is None else str(r.preset_two_qubit_count)
        table.add_row(
            r.backend, str(r.two_qubit_count), preset, str(r.two_qubit_depth), str(r.swaps), dur,
            f"{r.esp:.4f}", f"{(r.esp_gain - 1) * 100:+.2f}%", kept,
        )
    return table


@app.command("transpile-report")
def transpile_report(
    spec_file: Path = typer.Argument(..., help="Circuit spec TOML."),
    backend: list[str] = typer.Option(DEFAULT_BACKENDS, "--backend", "-b", help="Backend name; repeat for more."),
    optimization_level: int = typer.Option(3, "--optimization-level", "-O", help="Preset pass-manager level 0-3."),
    seeds: int = typer.Option(8, "--seeds", help="Number of seed_transpiler values swept per backend."),
    strategy: str = typer.Option("all", "--strategy", help="preset (Qiskit's preset pass manager), native "
                                 "(QFL/MMA-aware placement, bridges instead of SWAPs) or all (both, best kept)."),
    anchors: bool = typer.Option(False, "--anchors", help="Also report SABRE with 64 layout and swap trials and "
                                 "mapomatic's best layout per backend (references, never kept)."),
    json_path: Path | None = typer.Option(None, "--record", help="Record path (default results/transpile_*.json)."),
    plot_path: Path | None = typer.Option(None, "--plot", help="PNG path (default: beside the JSON record)."),
    present: str | None = typer.Option(None, "--present", help="MMA only: presence flags, e.g. 1,0,1."),
    isa_dir: Path = typer.Option(Path("circuits/isa"), "--isa-dir", help="Where ISA QPY/QASM files go."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Where records go by default."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Transpile a circuit spec for each backend (seed sweep, best by ESP) and compare the backends."""
    json_output(as_json)
    _check_suffix(json_path, ".json", "--record")
    _check_suffix(plot_path, ".png", "--plot")
    tspec = validate(
        TranspileSpec,
        {"backends": tuple(backend), "optimization_level": optimization_level, "seeds": seeds,
         "strategy": strategy, "anchors": anchors},
        source="command line",
    )
    spec, qnn = _load(spec_file, present)
    record = _report(spec, qnn, tspec, json_path=json_path, plot_path=plot_path, isa_dir=isa_dir,
                     results_dir=results_dir)
    if as_json:
        emit_json(record)
