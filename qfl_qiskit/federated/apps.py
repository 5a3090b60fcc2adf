"""Flower apps: the ClientApp trains locally (:mod:`.clients`), the ServerApp runs Flower's FedAvg loop with a
strategy whose aggregation is :mod:`.aggregate` (modality-aware or plain), validates updates, skips rounds with too
few clients, evaluates the global model on the test split and checkpoints it every round.

Everything a client needs travels in the train message's config (the spec as JSON, the absolute round), so the
same ClientApp runs in Flower's simulation engine and in a real deployment (SuperLink + SuperNodes).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from qfl_qiskit.atomic import atomic_write_bytes
from qfl_qiskit.federated.aggregate import ClientUpdate, fedavg, mma_ownership, modality_aware_fedavg, validate_updates
from qfl_qiskit.federated.clients import client_fails, local_train
from qfl_qiskit.specs.federated import FederatedSpec

client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """Local training on this node's partition (``partition-id`` in the node config)."""
    config = msg.content["config"]
    spec = FederatedSpec.model_validate_json(str(config["spec"]))
    client = int(context.node_config["partition-id"])
    round_index = int(config["round-offset"]) + int(config["server-round"])
    if client_fails(spec, client, round_index):
        raise RuntimeError(f"client {client} failed in round {round_index} (injected fault)")
    state = msg.content["arrays"].to_torch_state_dict()
    new_state, metrics = local_train(spec, client, state, round_index=round_index)
    reply = RecordDict({"arrays": ArrayRecord(torch_state_dict=new_state),
                        "metrics": MetricRecord({"num-examples": metrics["num-examples"],
                                                 "train-loss": metrics["train-loss"],
                                                 "modalities": metrics["modalities"] or [-1],
                                                 "client": client})})
    return Message(content=reply, reply_to=msg)


def _numpy(arrays: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in arrays.to_torch_state_dict().items()}


class QflStrategy(FedAvg):
    """FedAvg's round loop with our aggregation: validated updates, modality-aware or plain averaging."""

    def __init__(self, spec: FederatedSpec, ownership: Any, log: list[dict[str, Any]], round_offset: int) -> None:
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=spec.clients,
                         min_available_nodes=spec.clients, min_evaluate_nodes=0)
        self.spec, self.ownership, self.log, self.round_offset = spec, ownership, log, round_offset
        self.current: dict[str, np.ndarray] | None = None

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
                        ) -> Iterable[Message]:
        self.current = _numpy(arrays)
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid, failed = self._check_and_log_replies(replies, is_train=True, validate=False)
        updates = []
        for msg in valid:
            m = msg.content["metrics"]
            updates.append(ClientUpdate(str(int(m["client"])), _numpy(msg.content["arrays"]),
                                        int(m["num-examples"]),
                                        frozenset(int(x) for x in m["modalities"] if int(x) >= 0)))
        accepted, rejected = validate_updates(updates, self.current)
        entry: dict[str, Any] = {
            "round": self.round_offset + server_round, "failed_clients": len(failed),
            "rejected": [{"client": c, "reason": r} for c, r in rejected],
            "clients": [{"client": u.client, "num_examples": u.num_samples, "modalities": sorted(u.modalities),
                         "train_loss": float(msg.content["metrics"]["train-loss"])}
                        for u, msg in zip(updates, valid)],
        }
        if len(accepted) < self.spec.min_clients:
            entry["skipped"] = f"{len(accepted)} usable updates, fewer than min_clients {self.spec.min_clients}"
            self.log.append(entry)
            return None, None
        accepted.sort(key=lambda u: int(u.client))  # reply order varies; the sum's order should not
        merged = (modality_aware_fedavg(accepted, self.current, self.ownership) if self.spec.modality_aware
                  else fedavg(accepted, self.current))
        self.log.append(entry)
        loss = float(np.average([e["train_loss"] for e in entry["clients"]],
                                weights=[e["num_examples"] for e in entry["clients"]]))
        return (ArrayRecord(torch_state_dict={k: torch.as_tensor(v) for k, v in merged.items()}),
                MetricRecord({"train-loss": loss}))


def serve(grid: Grid, spec: FederatedSpec, *, initial: dict[str, torch.Tensor], ownership: Any, round_offset: int,
          rounds: int, on_round: Callable[[int, dict[str, torch.Tensor], dict[str, Any] | None], None],
          log: list[dict[str, Any]]) -> None:
    """The server side of ``rounds`` rounds on any Flower grid (simulation or deployment)."""
    strategy = QflStrategy(spec, ownership, log, round_offset)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        entry = log[-1] if log and log[-1]["round"] == round_offset + server_round else None
        on_round(round_offset + server_round, arrays.to_torch_state_dict(), entry)
        return None

    strategy.start(grid=grid, initial_arrays=ArrayRecord(torch_state_dict=initial), num_rounds=rounds,
                   train_config=ConfigRecord({"spec": spec.model_dump_json(), "round-offset": round_offset}),
                   evaluate_fn=evaluate)


def make_server_app(spec: FederatedSpec, *, initial: dict[str, torch.Tensor], ownership: Any, round_offset: int,
                    rounds: int, on_round: Callable[[int, dict[str, torch.Tensor], dict[str, Any] | None], None]
                    ) -> tuple[ServerApp, list[dict[str, Any]]]:
    """A ServerApp running ``rounds`` rounds from ``initial``; ``on_round(round, state, log entry)`` is called after
    each round (evaluation and checkpoint live there)."""
    log: list[dict[str, Any]] = []
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        serve(grid, spec, initial=initial, ownership=ownership, round_offset=round_offset, rounds=rounds,
              on_round=on_round, log=log)

    return app, log


server_app = ServerApp()
"""The ServerApp of a real deployment (``flwr run .``): the run config names the spec file (``spec``), the results
folder (``results-dir``) and whether to resume (``resume``)."""


@server_app.main()
def deployed_main(grid: Grid, context: Context) -> None:
    from qfl_qiskit.federated.run import prepare_run, finish_run
    from qfl_qiskit.specs.federated import load_federated_spec

    path = Path(str(context.run_config["spec"]))
    if not path.is_absolute() and not path.exists():  # relative to the Flower App (the installed FAB's root)
        path = Path(__file__).resolve().parents[2] / path
    spec = load_federated_spec(path)
    out_dir = Path(str(context.run_config.get("results-dir", "results"))) / spec.name
    run = prepare_run(spec, out_dir, resume=bool(context.run_config.get("resume", False)))
    if run.rounds > 0:
        serve(grid, spec, initial=run.initial, ownership=run.ownership, round_offset=run.offset, rounds=run.rounds,
              on_round=run.on_round, log=[])
    finish_run(spec, out_dir, run)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomic torch checkpoint."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())
