"""Run (or resume) a federated training on Flower's simulation engine; records, plots, checkpoints."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qfl_qiskit.errors import QflError
from qfl_qiskit.specs.federated import FederatedSpec


def ownership_for(model: Any) -> Any:
    """What each modality owns in the model's state: its encoder, and for MMA its block of the quantum weights."""
    from qfl_qiskit.circuits import build_mma
    from qfl_qiskit.federated.aggregate import Ownership, mma_ownership

    keys = list(model.state_dict())
    if model.name == "mma":
        return mma_ownership(keys, build_mma(model.spec).metadata["weight_groups"])
    entries = {k: int(k.split(".")[2]) for k in keys if k.startswith("encoders.encoders.")}
    return Ownership(entries=entries)


def run_federated(spec: FederatedSpec, out_dir: Path, *, resume: bool = False,
                  progress: Callable[[dict[str, Any]], None] | None = None,
                  stop_after: int | None = None) -> dict[str, Any]:
    """Train ``spec`` federated; write ``checkpoint.pt`` every round, then ``record.json`` and the accuracy plot.

    Args:
        spec: The federated spec.
        out_dir: The run folder.
        resume: Continue from ``checkpoint.pt`` (the same spec) after the last completed round.
        progress: Called with ``{"event": "round", "round", "rounds", "accuracy", ...}`` after each round.
        stop_after: Stop after this many rounds of this call (the checkpoint stays; for interruption tests).

    Returns:
        The run record.

    Raises:
        QflError: A checkpoint of another spec, or nothing left to run.
    """
    import torch
    from flwr.simulation import run_simulation

    from qfl_qiskit.federated.apps import client_app, make_server_app, save_checkpoint
    from qfl_qiskit.federated.clients import federation
    from qfl_qiskit.models import build_model
    from qfl_qiskit.results import make_record, save_record
    from qfl_qiskit.training.loop import evaluate

    notify = progress or (lambda e: None)
    _, splits, mask = federation(spec.model_dump_json())
    model = build_model(spec.model, splits.dims, splits.num_classes, seed=spec.seed)
    ckpt_path = out_dir / "checkpoint.pt"
    offset, history, initial = 0, [], model.state_dict()
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") != spec.spec_id:
            raise QflError(f"{ckpt_path} belongs to another federated spec; use another name or delete it")
        offset, history, initial = state["round"], state["history"], state["state"]
    rounds = spec.rounds - offset
    if stop_after is not None:
        rounds = min(rounds, stop_after)
    if rounds > 0:
        def on_round(r: int, state: dict[str, torch.Tensor], entry: dict[str, Any] | None) -> None:
            model.load_state_dict(state)
            metrics = evaluate(model, splits.test, num_classes=splits.num_classes)
            row = {"round": r, "global": metrics, **(entry or {"skipped": "no training replies"})}
            history.append(row)
            save_checkpoint(ckpt_path, {"fingerprint": spec.spec_id, "round": r, "state": model.state_dict(),
                                        "history": history})
            notify({"event": "round", "round": r, "rounds": spec.rounds, **metrics,
                    "skipped": row.get("skipped"), "failed": row.get("failed_clients", 0)})

        server_app, _ = make_server_app(spec, initial=initial, ownership=ownership_for(model), round_offset=offset,
                                        rounds=rounds, on_round=on_round)
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        run_simulation(server_app=server_app, client_app=client_app, num_supernodes=spec.clients,
                       backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                       "init_args": {"num_cpus": max(1, min(spec.clients, os.cpu_count() or 1)),
                                                     "include_dashboard": False, "log_to_driver": False}})
        if len(history) < offset + rounds:
            raise QflError(f"the simulation stopped after round {len(history)} of {offset + rounds}; "
                           f"run again with --resume to continue from the checkpoint")
    record = make_record("federated_run", specs={"federated": spec}, seeds={"seed": spec.seed},
                         payload={"history": history, "client_modalities": mask.tolist(),
                                  "rounds_completed": len(history)})
    if len(history) == spec.rounds:
        from qfl_qiskit.results.plots import plot_federated_accuracy

        save_record(record, out_dir / "record.json")
        plot_federated_accuracy(record, out_dir / "accuracy_per_round.png")
    return record
