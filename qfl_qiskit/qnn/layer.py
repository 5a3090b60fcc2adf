"""``QuantumLayer``: a QNN circuit as a torch module, differentiable through any estimator.

forward(inputs (B, n_in)) -> expectation values (B, K). Gradients:

- ``autograd``: through the exact torch simulator (development default, exact, fastest);
- ``param_shift``: gate-level two-term shift rule through any Qiskit V2 estimator (ours, ``StatevectorEstimator``,
  Aer's or Runtime's ``EstimatorV2``), for weights and inputs; the forward values and every shifted binding of the
  whole batch go to the estimator in ONE ``run`` call (one job on hardware);
- ``spsa``: simultaneous perturbation, one seeded random direction per step; forward, + and - evaluations in one
  ``run`` call.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from qiskit import QuantumCircuit
from torch import nn

from qfl_qiskit.circuits import QnnCircuit
from qfl_qiskit.errors import ExecutionError
from qfl_qiskit.execution.base import Task, estimate, layout_observables
from qfl_qiskit.execution.exact import ExactEstimator
from qfl_qiskit.qnn.shift import ShiftPlan, shift_plan

Gradient = Literal["autograd", "param_shift", "spsa"]


class QuantumLayer(nn.Module):
    """A :class:`QnnCircuit` with trainable weights, evaluated by an estimator.

    Args:
        qnn: The circuit, its inputs, weights and observables.
        estimator: Any ``qiskit.primitives.BaseEstimatorV2``; default the exact one of :mod:`qfl_qiskit.execution`.
        gradient: "autograd" (exact estimator only), "param_shift" or "spsa".
        circuit: A transpiled (ISA) version of ``qnn.circuit`` with the same parameters, run instead of the
            logical circuit; the QNN's logical observables are laid out for it (``layout_observables``).
        weight_seed: Seed of the uniform(-pi, pi) weight initialisation.
        spsa_epsilon: Perturbation size of SPSA.
        spsa_seed: Seed of SPSA's random directions.
        precision: Target standard error sent with every evaluation (Qiskit's PUB precision: shots on Runtime and
            in our Aer estimator); None leaves it to the estimator's default.

    Raises:
        ExecutionError: An unknown gradient, autograd with a non-exact estimator, or a circuit whose parameters
            are not the QNN's.
    """

    def __init__(
        self,
        qnn: QnnCircuit,
        *,
        estimator: Any = None,
        gradient: Gradient = "autograd",
        circuit: QuantumCircuit | None = None,
        weight_seed: int = 0,
        spsa_epsilon: float = 0.1,
        spsa_seed: int = 0,
        precision: float | None = None,
    ) -> None:
        super().__init__()
        self.qnn = qnn
        from qiskit.primitives import BaseEstimatorV2

        self.estimator = estimator if estimator is not None else ExactEstimator()
        if not isinstance(self.estimator, BaseEstimatorV2):
            raise ExecutionError(f"estimator must be a Qiskit V2 estimator (BaseEstimatorV2), got "
                                 f"{type(self.estimator).__name__}")
        if gradient not in ("autograd", "param_shift", "spsa"):
            raise ExecutionError(f"unknown gradient '{gradient}'; use autograd, param_shift or spsa")
        if gradient == "autograd" and not isinstance(self.estimator, ExactEstimator):
            raise ExecutionError(
                f"gradient 'autograd' needs the exact estimator, not {_name(self.estimator)!r}; use param_shift or "
                "spsa"
            )
        self.gradient = gradient
        self.circuit = circuit if circuit is not None else qnn.circuit
        self.observables = (tuple(qnn.observables) if self.circuit is qnn.circuit
                            else layout_observables(self.circuit, qnn.observables))
        self.register_buffer("_perm", torch.as_tensor(_column_map(qnn, self.circuit), dtype=torch.long))
        # circuit columns holding weights: the same in every row, so the exact simulator builds them once a batch
        self._weight_columns = [i for i, c in enumerate(self._perm.tolist()) if c >= qnn.num_inputs]
        gen = torch.Generator().manual_seed(weight_seed)
        init = (torch.rand(qnn.num_weights, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
        self.weights = nn.Parameter(init)
        if precision is not None and not precision >= 0:
            raise ExecutionError(f"precision must be >= 0 (got {precision})")
        self.precision = precision
        self.spsa_epsilon = spsa_epsilon
        self.spsa_seed = spsa_seed
        self._spsa_gen = np.random.default_rng(spsa_seed)
        self._plan: ShiftPlan | None = None
        self.last_stds: np.ndarray | None = None
        self.calls = 0  # estimator run calls made (one per forward)

    @property
    def num_outputs(self) -> int:
        """K, the number of observables."""
        return len(self.observables)

    def extra_repr(self) -> str:
        return (f"inputs={self.qnn.num_inputs}, weights={self.qnn.num_weights}, outputs={self.num_outputs}, "
                f"estimator={_name(self.estimator)}, gradient={self.gradient}")

    def circuit_values(self, inputs: torch.Tensor) -> torch.Tensor:
        """Parameter values (B, p) in circuit order, differentiable w.r.t. inputs and weights."""
        if inputs.shape[-1] != self.qnn.num_inputs:
            raise ExecutionError(f"expected inputs with {self.qnn.num_inputs} features, got shape {tuple(inputs.shape)}")
        if not torch.isfinite(inputs).all():
            raise ExecutionError("inputs contain NaN or inf")
        w = self.weights.to(inputs.dtype).expand(*inputs.shape[:-1], -1)
        # index_select, not [..., perm]: advanced indexing's backward is an index_put, about 3x slower here
        return torch.cat([inputs, w], dim=-1).index_select(-1, self._perm)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Expectation values (..., K) for inputs (..., n_in)."""
        values = self.circuit_values(inputs)
        self.calls += 1
        if self.gradient == "autograd":
            assert isinstance(self.estimator, ExactEstimator)
            return self.estimator.evaluate(self.circuit, self.observables, values,
                                           shared=self._weight_columns).to(inputs.dtype)
        return _EstimatorFunction.apply(values, self)

    # -- estimator calls for the non-autograd paths ------------------------------------------------------------
    def _plan_for(self) -> ShiftPlan:
        if self._plan is None:
            self._plan = shift_plan(self.circuit)
        return self._plan

    def _evaluate(self, values: np.ndarray, with_jacobian: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Forward values (..., K), and the Jacobian (..., K, p) if asked, from one estimator call."""
        tasks = [Task(self.circuit, self.observables, values)]
        if with_jacobian and self.gradient == "param_shift":
            plan = self._plan_for()
            tasks.append(Task(plan.circuit, self.observables, plan.shifted(values)))
        elif with_jacobian:  # spsa
            delta = self._spsa_gen.choice([-1.0, 1.0], size=values.shape[-1])
            shifts = np.stack([values + self.spsa_epsilon * delta, values - self.spsa_epsilon * delta])
            tasks.append(Task(self.circuit, self.observables, shifts))
        results = estimate(self.estimator, tasks, precision=self.precision)
        evs = results[0].evs
        self.last_stds = results[0].stds
        if not with_jacobian:
            return evs, None
        shifted = results[1].evs
        if self.gradient == "param_shift":
            return evs, self._plan_for().jacobian(shifted, values)
        slope = (shifted[0] - shifted[1]) / (2 * self.spsa_epsilon)  # (..., K)
        return evs, slope[..., None] * delta


def _name(estimator: Any) -> str:
    return getattr(estimator, "name", type(estimator).__name__)


def _column_map(qnn: QnnCircuit, circuit: QuantumCircuit) -> list[int]:
    """For each parameter of ``circuit``, its column in [inputs | weights]."""
    columns = {p: i for i, p in enumerate(qnn.inputs)}
    columns.update({p: qnn.num_inputs + j for j, p in enumerate(qnn.weights)})
    missing = [p.name for p in circuit.parameters if p not in columns]
    if missing:
        raise ExecutionError(
            f"circuit '{circuit.name}' has parameters the QNN does not know: {missing[:5]}; "
            "pass the transpiled version of the QNN's own circuit"
        )
    return [columns[p] for p in circuit.parameters]


class _EstimatorFunction(torch.autograd.Function):
    """Values (..., p) -> evs (..., K) through an estimator; backward from the Jacobian computed in forward."""

    @staticmethod
    def forward(ctx: Any, values: torch.Tensor, layer: QuantumLayer) -> torch.Tensor:  # type: ignore[override]
        need = ctx.needs_input_grad[0]
        evs, jac = layer._evaluate(values.detach().to(torch.float64).cpu().numpy(), need)
        if jac is not None:
            ctx.save_for_backward(torch.as_tensor(jac, dtype=values.dtype))
        return torch.as_tensor(evs, dtype=values.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, None]:  # type: ignore[override]
        (jac,) = ctx.saved_tensors
        return torch.einsum("...k,...kp->...p", grad_out, jac), None
