"""``qfl reproduce``: the papers' experiments, one command each, with records, plots and a verdict per claim."""

from __future__ import annotations

import os
from pathlib import Path
import typer

from qfl_qiskit.cli.app import JSON_OPTION_HELP, app, compact_table, console, emit_json, json_output
from qfl_qiskit.cli.progress import RAY_ADDRESS_HELP, CellProgress


@app.command("reproduce")
def reproduce(
    name: str = typer.Argument(None, help="Experiment to run (see --list)."),
    list_: bool = typer.Option(False, "--list", help="List the experiments and the claims they test."),
    table: bool = typer.Option(False, "--table", help="Print the claims table (Markdown) of the experiments run "
                               "under --results-dir: claim, setting, measured, verdict, plots, wall time."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes: a few minutes on 2 cores (the tests run it)."),
    seeds: str = typer.Option(None, "--seeds", help="Comma-separated seeds (default: the experiment's)."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished cells of an interrupted run."),
    data_path: Path = typer.Option(None, "--data-path",
                                   help="A data set you downloaded, for the experiments that take one (see --list)."),
    results_dir: Path = typer.Option(Path("results"), "--results-dir",
                                     help="The experiment goes to <dir>/reproduce/<name>/."),
    workers: int = typer.Option(None, "--workers", min=1, max=256, help="Local processes (default: CPU count)."),
    ray_address: str = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help=RAY_ADDRESS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Run one of the papers' experiments; `--list` shows them."""
    from qfl_qiskit.atomic import require_writable_dir
    from qfl_qiskit.errors import SpecError
    from qfl_qiskit.studies.reproduce import EXPERIMENTS, run_experiment

    json_output(as_json)
    if list_:
        table = compact_table("qfl reproduce NAME [--quick]")
        table.add_column("name", no_wrap=True)
        table.add_column("claim tested")
        for key, module in EXPERIMENTS.items():
            extra = f" [--data-path: {module.DATA_PATH}]" if hasattr(module, "DATA_PATH") else ""
            table.add_row(key, module.CLAIM + extra)
        console.print(table)
        if as_json:
            emit_json([{"name": k, "claim": m.CLAIM, "data_path": getattr(m, "DATA_PATH", None)}
                       for k, m in EXPERIMENTS.items()])
        return
    if table:
        from qfl_qiskit.studies.reproduce.runner import claims_table

        if not (results_dir / "reproduce").is_dir():
            raise SpecError(f"{results_dir} holds no reproduce/ folder: run `qfl reproduce NAME` first, or give the "
                            "--results-dir it wrote to")
        rows = claims_table(results_dir)
        if as_json:
            emit_json(rows)
            return
        print("| experiment | paper's claim | our setting | measured | verdict | plot | wall time |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            if r["record"] is None:
                print(f"| {r['name']} | not run yet: `qfl reproduce {r['name']}` | | | | | |")
                continue
            wall = "" if r["wall_seconds"] is None else f"{r['wall_seconds'] / 60:.1f} min"
            if r["resumed_cells"]:
                wall += f" (+{r['resumed_cells']} cells resumed)"
            plots = " ".join(f"[{Path(p).stem}]({p})" for p in r["plots"])
            print(f"| {r['name']}{' (--quick)' if r['quick'] else ''} | {r['claim']} | {r['setting']} | "
                  f"{r['measured']} | **{r['verdict']}** | {plots} | {wall} |")
        return
    if name is None:
        raise SpecError("give an experiment name, or --list to see them")
    if name not in EXPERIMENTS:
        raise SpecError(f"no experiment {name!r}; the experiments: {', '.join(EXPERIMENTS)} (qfl reproduce --list)")
    from qfl_qiskit.cli.train import parse_seeds

    seed_list = parse_seeds(seeds) if seeds is not None else None
    require_writable_dir(results_dir, what="--results-dir")
    out_dir = results_dir / "reproduce" / name
    with CellProgress() as on_event:
        record = run_experiment(EXPERIMENTS[name], out_dir=out_dir, quick=quick, seeds=seed_list, resume=resume,
                                data_path=data_path, workers=workers or os.cpu_count() or 1,
                                ray_address=ray_address or None, progress=on_event)
    verdict = record["payload"]["verdict"]
    console.print(f"claim: {record['payload']['claim']}")
    console.print(f"verdict: {verdict['verdict']} ({verdict['why']})")
    console.print(f"wrote {out_dir}/ (record.json, cells/, plots)")
    if as_json:
        emit_json(record)
