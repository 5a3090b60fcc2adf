"""Train or fine-tune a quantum fusion model on an IBM backend through Runtime (``[execution] estimator = "runtime"``).

The usual path: train on the exact simulator, then fine-tune a few steps on the device, starting from those
weights (``init_from`` / ``qfl train --from RUN_FOLDER``). The run:

1. transpiles each circuit of the model ONCE for the backend (best ESP of ``transpile_seeds`` seeds) and reuses the
   ISA circuit, with laid-out observables, for every step;
2. estimates the QPU time of the whole run from the first step's PUBs and refuses before anything is submitted or
   written when it exceeds ``max_qpu_seconds``;
3. runs every optimisation step as ONE Runtime job (:mod:`.qpu_jobs`: forward values, every shifted binding of
   the batch, every ZNE scale factor), all inside one batch or session; the job id is in the step's job record
   before anyone waits; model, optimiser and random states are checkpointed after every step;
4. stops cleanly, with a checkpoint and ``stop_reason = "budget reached"`` in the record, before a step whose
   estimate would take the QPU seconds used (as Runtime reports them; the estimate in local testing mode, where no
   QPU runs) past the budget.

Validation and test metrics are computed on the exact simulator, before and after, and labelled so: the weights are
what the device trained, the metrics say how good they are without device noise (run ``qfl submit`` of the model
folder, or ``qfl evaluate --backend``, for metrics under noise).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qfl_qiskit.errors import SpecError
from qfl_qiskit.runtime import jobs
from qfl_qiskit.runtime import service as rt
from qfl_qiskit.training.loop import (
    Progress,
    TrainingDiverged,
    epoch_batches,
    evaluate,
    load_checkpoint,
    save_checkpoint,
)
from qfl_qiskit.training.qpu_jobs import RunStopped, StepEstimator, StepRunner
from qfl_qiskit.training.qpu_setup import (
    LEARNING_FILE,
    IsaCache,
    check_device_model,
    check_isa,
    write_isa,
    init_weights,
    job_settings,
    learned_layer_noise,
    needs_layer_noise,
)

QPU_CHECKPOINT_KEYS = ("fingerprint", "step", "model", "optimizer", "rng", "patterns", "history", "exact_before",
                       "finished", "stop_reason", "wall_time", "isa")


@dataclass
class Hooks:
    """Injection points of the hardware path (tests): Runtime submission, the service, waits.

    Attributes:
        submit_fn: ``(v2_pubs, precision, mode_obj) -> job`` instead of Runtime's Estimator.
        service: A ``QiskitRuntimeService``-like object (job look-up by id or tag).
        sleep: Wait function of the backoff.
        wait_hook: Called with a job record's path after its job id is written, before waiting.
        retry: Backoff policy.
        on_submit: Called with the job record of every job submitted (counting them).
    """

    submit_fn: Callable[..., Any] | None = None
    service: Any = None
    sleep: Callable[[float], None] = time.sleep
    wait_hook: Callable[[Path], None] | None = None
    retry: rt.RetryPolicy = field(default_factory=rt.RetryPolicy)
    on_submit: Callable[[dict[str, Any]], None] | None = None


def _rng_states(model: Any) -> list[Any]:
    return [layer._spsa_gen.bit_generator.state for layer in model.layers()]


def _set_rng(model: Any, states: list[Any]) -> None:
    for i, layer in enumerate(model.layers()):
        if i < len(states):
            layer._spsa_gen.bit_generator.state = states[i]
        else:  # a layer first built during the collecting pass starts from its seed again
            layer._spsa_gen = np.random.default_rng(layer.spsa_seed)


def _patterns(model: Any) -> list[list[bool]]:
    return [list(p) for p in getattr(model, "_patterns", {})]


#: ``[execution]`` keys a run may change between resumes: a larger budget, more steps (the plan's first steps
#: stay the same), more retries.
RESUMABLE_CHANGES = ("max_qpu_seconds", "steps", "job_retries")


def run_identity(spec: Any) -> str:
    """The spec id without :data:`RESUMABLE_CHANGES`: what a checkpoint must match to be resumed."""
    cleared = spec.execution.model_copy(update={k: None if k != "job_retries" else 0 for k in RESUMABLE_CHANGES})
    return spec.model_copy(update={"execution": cleared}).spec_id


def plan_steps(n_train: int, *, batch_size: int, epochs: int, seed: int, limit: int | None) -> list[tuple[int, Any]]:
    """(epoch, rows) of every optimisation step: the seeded batches of each epoch (as :func:`~.loop.fit` draws
    them), cut after ``limit`` steps."""
    out: list[tuple[int, Any]] = []
    for epoch in range(1, epochs + 1):
        for rows in epoch_batches(n_train, batch_size, seed=seed, epoch=epoch):
            out.append((epoch, rows))
            if limit is not None and len(out) >= limit:
                return out
    return out


class _Stepper:
    """Runs one step's two passes (collect, replay + backward) on the model."""

    def __init__(self, model: Any, estimator: StepEstimator, train: Any, loss_fn: Any) -> None:
        self.model, self.est, self.train, self.loss_fn = model, estimator, train, loss_fn

    def collect(self, rows: Any) -> list[tuple]:
        """The step's PUBs (pass 1); random states restored afterwards, so pass 2 draws the same."""
        states = _rng_states(self.model)
        self.est.collect()
        self.model.train()
        xs = [x[rows] for x in self.train.modalities]
        self.model(xs, self.train.presence[rows])
        pubs = self.est.v2_pubs()
        _set_rng(self.model, states)
        return pubs

    def apply(self, rows: Any, results: list[Any], opt: torch.optim.Optimizer, step: int) -> float:
        """Pass 2 answered by the job's results; backward and one optimiser step. Returns the loss."""
        self.est.replay(results)
        xs = [x[rows] for x in self.train.modalities]
        opt.zero_grad()
        loss = self.loss_fn(self.model(xs, self.train.presence[rows]), self.train.labels[rows])
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"training diverged: the loss is {loss.item()} at step {step}; lower optim.lr "
                                   "(the checkpoint of the step before is kept)")
        loss.backward()
        opt.step()
        return float(loss.item())


def train_on_device(spec: Any, model_spec: Any, splits: Any, folder: Path, *, resume: bool = False,
                    progress: Progress | None = None, hooks: Hooks | None = None,
                    dry_run: bool = False) -> dict[str, Any]:
    """Train ``model_spec`` of ``spec`` on ``spec.execution.backend``, one Runtime job per step (module docstring).

    Args:
        spec: The training spec (``execution.estimator == "runtime"``).
        model_spec: A qfl or mma model spec of it.
        splits: The prepared data.
        folder: The model's run folder (checkpoint, job records, record, model, learning curve).
        resume: Continue from the checkpoint; a step cut off while its job ran gets that job's result (no second
            submission), or in local testing mode a seeded re-run.
        progress: Callback for ``qpu_start`` / ``qpu_step`` / ``qpu_done`` events.
        hooks: Test injection points.
        dry_run: Stop after the estimate of the whole run: nothing submitted, nothing written.

    Returns:
        The model's row for the comparison record (with ``dry_run``: the label and the ``projection``).

    Raises:
        SpecError: A classical model, or ``init_from`` that does not fit.
        CostLimitError: The whole run's estimate exceeds ``max_qpu_seconds`` (nothing submitted or written).
        RunStopped: A job failed too often, was cancelled, or the session ended (checkpoint kept).
        RunInterrupted: Ctrl-C (checkpoint kept; the message names the queued job).
    """
    from qfl_qiskit.mitigation import MitigatedEstimator
    from qfl_qiskit.models import build_model
    from qfl_qiskit.models.losses import make_loss
    from qfl_qiskit.transpile import calibration_time, resolve_backend

    hooks = hooks or Hooks()
    notify = progress or (lambda event: None)
    ex, label = spec.execution, model_spec.display
    check_device_model(model_spec)
    backend = resolve_backend(ex.backend)
    settings = job_settings(ex, backend, seed=spec.seed)
    resolved = settings.resolved()
    if "unresolved" in resolved:
        raise SpecError(f"runtime_mitigation: Runtime cannot run these options: {resolved['unresolved']}")
    model = build_model(model_spec, splits.dims, splits.num_classes, seed=spec.seed)
    init = (init_weights(model, model_spec, ex.init_from, dims=splits.dims, num_classes=splits.num_classes)
            if ex.init_from else None)
    loss_fn = make_loss(spec.loss.name, gamma=spec.loss.gamma, alpha=spec.loss.alpha)
    fingerprint = f"{run_identity(spec)}/{label}/{init['sha256'] if init else 'scratch'}"
    checkpoint = folder / "checkpoint.pt"
    state = (load_checkpoint(checkpoint, fingerprint=fingerprint, required=QPU_CHECKPOINT_KEYS,
                             fresh_hint="train without --resume to start over")
             if resume and checkpoint.exists() else None)
    if state is None and not dry_run and ((folder / "jobs").is_dir() and any((folder / "jobs").glob("step*.json"))
                          or checkpoint.exists()):
        raise SpecError(f"{folder} already holds a device run (its job records are the receipts of QPU time and "
                        "are never overwritten): add --resume to continue it, or give the spec another name")
    exact_before = state["exact_before"] if state else None if dry_run else _exact_metrics(model, splits, loss_fn)

    isa = IsaCache(backend, seeds=ex.transpile_seeds, name=ex.backend)
    step_est = StepEstimator({"estimator": "runtime", "backend": backend.name, "mode": ex.mode,
                              "runtime_options": resolved})
    estimator: Any = step_est
    if ex.mitigation is not None and ex.mitigation.techniques:
        needs_target = "ddd" in ex.mitigation.techniques
        estimator = MitigatedEstimator(step_est, ex.mitigation, target=backend.target if needs_target else None)
    if state:
        for pattern in state["patterns"]:  # MMA: the layers of the patterns seen, in the order they were made
            model.layer_for(tuple(pattern))
    model.use_estimator(estimator, gradient=ex.gradient, transpile=isa)
    opt = torch.optim.Adam(model.parameters(), lr=spec.optim.lr, weight_decay=spec.optim.weight_decay,
                           fused=True)  # as the simulator training loop (training.loop.fit)
    plan = plan_steps(len(splits.train.labels), batch_size=spec.optim.batch_size, epochs=spec.optim.epochs,
                      seed=spec.seed, limit=ex.steps)
    history: list[dict[str, Any]] = []
    done, wall, stop_reason, finished, resumed_from = 0, 0.0, None, False, 0
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        _set_rng(model, state["rng"])
        history, done, wall = state["history"], state["step"], state["wall_time"]
        stop_reason = state["stop_reason"]
        finished = done >= len(plan)  # more steps (a resumable change) reopen a finished run
        resumed_from = done
    stepper = _Stepper(model, step_est, splits.train, loss_fn)

    budget = ex.max_qpu_seconds
    projection = None
    if done < len(plan) and not finished:
        first = jobs.cost_of(stepper.collect(plan[done][1]), settings)
        used = _used(history)
        projection = {"per_step_s": first["qpu_seconds"], "steps": len(plan) - done, "used_s": used,
                      "total_s": used + first["qpu_seconds"] * (len(plan) - done), "first_step": first}
        if budget is not None and not state and projection["total_s"] > budget:
            raise jobs.CostLimitError(
                f"estimated QPU time of the run, {projection['total_s']:.1f} s ({len(plan)} steps x "
                f"{first['qpu_seconds']:.2f} s), exceeds max_qpu_seconds {budget:g}; nothing submitted (fewer "
                "steps, a smaller batch_size, fewer shots, spsa instead of param_shift, or a larger budget)")
    if dry_run:
        return {"label": label, "dry_run": True, "projection": projection, "backend": backend.name,
                "isa": isa.entries, "job_options": settings.record_options()}
    if state:
        check_isa(state["isa"], isa.entries)
    folder.mkdir(parents=True, exist_ok=True)
    write_isa(folder, isa)
    runner = StepRunner(settings, folder / "jobs", tag=f"qfl-{hashlib.sha256(fingerprint.encode()).hexdigest()[:12]}",
                        specs={"train": spec, "model": model_spec}, seed=spec.seed, job_retries=ex.job_retries,
                        retry=hooks.retry, submit_fn=hooks.submit_fn, service=hooks.service, sleep=hooks.sleep,
                        wait_hook=hooks.wait_hook, on_submit=hooks.on_submit)

    def save_state() -> None:
        write_isa(folder, isa)  # MMA builds (and transpiles) a circuit per presence pattern when first seen
        save_checkpoint(checkpoint, {"fingerprint": fingerprint, "step": done, "model": model.state_dict(),
                           "optimizer": opt.state_dict(), "rng": _rng_states(model), "patterns": _patterns(model),
                           "history": history, "exact_before": exact_before, "finished": finished,
                           "stop_reason": stop_reason, "wall_time": wall, "isa": isa.entries})

    learning: dict[str, Any] | None = None

    notify({"event": "qpu_start", "steps": len(plan), "done": done, "budget": budget, "projection": projection,
            "model": label})
    try:
        if not finished:
            stop_reason = None
            with rt.execution_mode(backend, ex.mode, ex.max_time) as mode_obj:
                if needs_layer_noise(resolved) and done < len(plan):
                    learning = learned_layer_noise(folder, settings, stepper.collect(plan[done][1]), mode_obj,
                                                   runner)
                    settings = replace(settings, layer_noise=learning["maps"])
                    runner.settings = settings
                while done < len(plan):
                    t0 = time.perf_counter()
                    epoch, rows = plan[done]
                    v2_pubs = stepper.collect(rows)
                    cost = jobs.cost_of(v2_pubs, settings)
                    if budget is not None and _used(history, learning) + cost["qpu_seconds"] > budget:
                        stop_reason = "budget reached"
                        break
                    record, result = runner.run(done + 1, v2_pubs, mode_obj, cost=cost,
                                                info={"kind": "training_step", "model": label, "epoch": epoch,
                                                      "batch": int(len(rows)), "gradient": ex.gradient})
                    loss = stepper.apply(rows, jobs.pub_results(result), opt, done + 1)
                    done += 1
                    wall += time.perf_counter() - t0
                    history.append(_row(done, epoch, len(rows), loss, record, cost))
                    finished = done == len(plan)
                    save_state()
                    notify({"event": "qpu_step", "model": label, "step": done, "steps": len(plan), "loss": loss,
                            "job_id": history[-1]["job_id"], "used_s": _used(history, learning), "budget": budget})
        finished = done == len(plan)  # a stop at the budget can go on with a larger one (--resume)
        save_state()
    except RunStopped as exc:
        stop_reason = f"stopped: {exc}"
        save_state()
        raise
    row = _finish(spec, model_spec, model, splits, folder, loss_fn=loss_fn, history=history, plan=plan,
                  exact_before=exact_before, init=init, settings=settings, isa=isa, stop_reason=stop_reason,
                  projection=projection, wall=wall, calibration=calibration_time(backend),
                  submissions=runner.submissions, learning=learning, resumed_from=resumed_from)
    notify({"event": "qpu_done", "model": label, "steps": done, "stop_reason": stop_reason})
    return row


def _used(history: list[dict[str, Any]], learning: dict[str, Any] | None = None) -> float:
    """QPU seconds used so far: Runtime's figure per job where it reports one, else the estimate (and the
    reported time of the layer-noise learning job, for PEA)."""
    steps = sum(r["qpu_seconds_reported"] if r["qpu_seconds_reported"] is not None else r["qpu_seconds_estimated"]
                for r in history)
    return float(steps + ((learning or {}).get("qpu_seconds_reported") or 0.0))


def _row(step: int, epoch: int, batch: int, loss: float, record: dict[str, Any], cost: dict[str, Any]) -> dict:
    return {"step": step, "epoch": epoch, "batch": batch, "train_loss": loss, "job_id": record["job_ids"][0],
            "record_id": record["record_id"], "session_id": record.get("session_id"),
            "recovered_by": record.get("recovered_by"), "status": record["status"],
            "qpu_seconds_estimated": cost["qpu_seconds"], "qpu_seconds_reported": record.get("qpu_seconds_reported"),
            "shots_run": record.get("shots_run"), "bindings": cost["bindings"], "pubs": cost["pubs"]}


def _exact_metrics(model: Any, splits: Any, loss_fn: Any) -> dict[str, Any]:
    return {"val": evaluate(model, splits.val, num_classes=splits.num_classes, loss_fn=loss_fn),
            "test": evaluate(model, splits.test, num_classes=splits.num_classes, loss_fn=loss_fn)}


def _finish(spec: Any, model_spec: Any, model: Any, splits: Any, folder: Path, **kw: Any) -> dict[str, Any]:
    """Exact metrics after training, ``model.pt``, ``record.json`` and the learning curve."""
    from qfl_qiskit.models import build_model
    from qfl_qiskit.results.plots import plot_qpu_curve
    from qfl_qiskit.results.records import make_record, save_record
    from qfl_qiskit.training.experiment import save_model

    exact = build_model(model_spec, splits.dims, splits.num_classes, seed=spec.seed)
    exact.load_state_dict(model.state_dict())
    after = _exact_metrics(exact, splits, kw["loss_fn"])
    save_model(folder / "model.pt", exact, spec=spec, label=model_spec.display, splits=splits)
    history, settings = kw["history"], kw["settings"]
    reported = [r["qpu_seconds_reported"] for r in history if r["qpu_seconds_reported"] is not None]
    row = {"label": model_spec.display, "model": model_spec.name, "quantum": True,
           "fusion_parameters": model.fusion_parameters, "total_parameters": model.total_parameters,
           "test": after["test"], "best_epoch": len(history), "epochs_run": len(kw["plan"]),
           "stopped_early": kw["stop_reason"] is not None, "train_seconds": kw["wall"],
           "resumed_from": kw["resumed_from"],
           "circuit": {"num_qubits": model.layers()[0].qnn.circuit.num_qubits,
                       "spec": model.spec.model_dump(mode="json"), "spec_id": model.spec.spec_id}}
    qpu = {"backend": settings.backend.name, "local": settings.local, "calibration_time": kw["calibration"],
           "mode": settings.mode, "max_time": settings.max_time, "gradient": spec.execution.gradient,
           "steps_planned": len(kw["plan"]), "steps_done": len(history), "stop_reason": kw["stop_reason"],
           "jobs": [r["job_id"] for r in history], "job_records": "jobs/",
           "sessions": sorted({r["session_id"] for r in history if r["session_id"]}),
           "submissions_this_process": kw["submissions"], "isa": kw["isa"].entries,
           "mitigation": spec.execution.mitigation.model_dump(mode="json") if spec.execution.mitigation else None,
           "runtime_mitigation": (spec.execution.runtime_mitigation.model_dump(mode="json")
                                  if spec.execution.runtime_mitigation else None),
           "job_options": settings.record_options(),
           "qpu_seconds": {"budget": spec.execution.max_qpu_seconds, "projection": kw["projection"],
                           "estimated": float(sum(r["qpu_seconds_estimated"] for r in history)),
                           "reported": float(sum(reported)) if reported else None, "used": _used(history, kw["learning"]),
                           "note": ("local testing mode: no QPU ran; used = the estimate" if settings.local else
                                    "used = Runtime's reported usage per job, the estimate where none was given")},
           "init_from": kw["init"], "exact_metrics": {"before": kw["exact_before"], "after": after},
           "noise_learning": ({k: v for k, v in kw["learning"].items() if k != "maps"} | {"file": LEARNING_FILE}
                              if kw["learning"] else None)}
    record = make_record("training_run", specs={"train": spec, "model": model_spec}, seeds={"seed": spec.seed},
                         payload={**row, "history": history, "qpu": qpu,
                                  "estimator": {"estimator": "runtime", "backend": settings.backend.name}},
                         data=splits.provenance())
    save_record(record, folder / "record.json")
    plot_qpu_curve(record, folder / "learning_curve.png")
    return {**row, "qpu": {k: qpu[k] for k in ("backend", "steps_done", "steps_planned", "stop_reason")},
            "exact_before": kw["exact_before"]["test"], "qpu_seconds_used": _used(history, kw["learning"])}
