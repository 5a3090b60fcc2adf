"""Rich progress bars: the training loop's (per batch) and the sweep executor's (per cell, across a cluster)."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from qfl_qiskit.cli.app import console


class TrainingProgress:
    """Context manager: one bar per model over all its batches, showing epoch, loss and the validation metric."""

    def __init__(self, *, monitor: str, epochs: int) -> None:
        self.monitor, self.epochs = monitor, epochs
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self._tasks: dict[str, int] = {}
        self._val = "-"
        self._budget = ""

    def __enter__(self) -> TrainingProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, event: dict[str, Any]) -> None:
        model = event.get("model", "model")
        kind = event["event"]
        if kind == "epoch_start":
            total = event["batches"] * event["epochs"]
            if model not in self._tasks:
                done = event["batches"] * (event["epoch"] - 1)
                self._tasks[model] = self._progress.add_task(model, total=total, completed=done, status="")
            self._progress.update(self._tasks[model], total=total)
        elif kind == "batch":
            self._progress.update(self._tasks[model], advance=1, description=f"{model} epoch {event['epoch']}",
                                  status=f"loss {event['loss']:.3f}  val {self.monitor} {self._val}")
        elif kind == "epoch_end":
            key = "val_loss" if self.monitor == "loss" else f"val_{self.monitor}"
            self._val = f"{event[key]:.3f}"
        elif kind == "qpu_start":
            budget = f"/{event['budget']:g}" if event["budget"] else ""
            self._budget = budget
            self._tasks[model] = self._progress.add_task(f"{model} on device", total=event["steps"],
                                                         completed=event["done"], status="transpiled; step 1 "
                                                         "collecting" if not event["done"] else "resuming")
        elif kind == "qpu_step":
            self._progress.update(self._tasks[model], completed=event["step"],
                                  status=f"loss {event['loss']:.3f} job {event['job_id'][:8]} QPU "
                                  f"{event['used_s']:.0f}{self._budget}s")
        elif kind == "qpu_done" and model in self._tasks:
            why = event["stop_reason"]
            self._progress.update(self._tasks[model], status=f"{event['steps']} steps" + (f" ({why})" if why else ""))
        elif kind == "done" and model in self._tasks:
            task = self._tasks[model]
            self._progress.update(task, completed=self._progress.tasks[task].total,
                                  status=f"best epoch {event['best_epoch']}" +
                                  (" (early stop)" if event["stopped_early"] else ""))
            self._val = "-"


RAY_ADDRESS_HELP = ("Run the cells as Ray tasks on this cluster (HEAD:6379, auto, ray://HEAD:10001); default: local "
                    "processes. Also read from RAY_ADDRESS.")


class CellProgress:
    """Context manager yielding the callback of a sweep: one bar over its cells, wherever they run, counting the
    cells finished before a resume and the failed ones."""

    def __init__(self, what: str = "cells") -> None:
        self.what = what
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=28), MofNCompleteColumn(),
                                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                  TimeRemainingColumn(), console=console)
        self._task = self._progress.add_task(what, total=None, status="")
        self._before = 0
        self._failed = 0

    def __enter__(self) -> CellProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "start":
            self._before = event["done"]
            self._progress.update(self._task, total=event["total"], completed=event["done"])
        elif kind in ("cell", "failed"):
            self._failed += kind == "failed"
            self._progress.advance(self._task)
        else:
            return
        status = [f"{self._before} done before"] if self._before else []
        status += [f"{self._failed} failed"] if self._failed else []
        self._progress.update(self._task, status=", ".join(status))
