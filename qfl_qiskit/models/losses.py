"""Classification losses: cross entropy and multi-class focal loss."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from qfl_qiskit.errors import SpecError

Reduction = Literal["mean", "sum", "none"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES = ("cross_entropy", "focal")


def _alpha_per_sample(alpha: float | Sequence[float] | torch.Tensor | None, targets: torch.Tensor,
                      num_classes: int, like: torch.Tensor) -> torch.Tensor | None:
    """The weight alpha_t of every sample's true class (None when alpha is None)."""
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)):
        return torch.full(targets.shape, float(alpha), dtype=like.dtype, device=like.device)
    weights = torch.as_tensor(alpha, dtype=like.dtype, device=like.device).flatten()
    if weights.numel() != num_classes:
        raise SpecError(f"focal loss alpha has {weights.numel()} class weights but the logits have {num_classes} "
                        "classes; give one weight per class, a single float, or none")
    return weights[targets]


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, *, gamma: float = 2.0,
               alpha: float | Sequence[float] | torch.Tensor | None = None,
               reduction: Reduction = "mean") -> torch.Tensor:
    """Multi-class focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017).

    FL = -alpha_t * (1 - p_t)^gamma * log p_t, with p_t the softmax probability of the true class. log p_t comes
    from ``log_softmax`` (numerically stable) and 1 - p_t from ``-expm1(log p_t)``; with gamma = 0 and no alpha it
    equals cross entropy. Well-classified samples (p_t near 1) are down-weighted by (1 - p_t)^gamma.

    Args:
        logits: (B, C) unnormalised class scores.
        targets: (B,) integer class labels in [0, C).
        gamma: Focusing parameter, >= 0.
        alpha: Class weighting: None (all 1), a float (the same weight for every class; a softmax loss has no
            single "positive" class), or one weight per class (sequence or tensor of length C).
        reduction: "mean" (plain mean over samples), "sum", or "none" (per-sample losses (B,)).

    Returns:
        The reduced loss (a scalar), or per-sample losses for reduction "none".

    Raises:
        SpecError: If gamma < 0, alpha has the wrong length, or the reduction is unknown.
    """
    if gamma < 0:
        raise SpecError(f"focal loss gamma must be >= 0, got {gamma}")
    if reduction not in ("mean", "sum", "none"):
        raise SpecError(f"unknown reduction '{reduction}'; use mean, sum or none")
    targets = targets.long()
    log_pt = F.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    loss = -log_pt
    if gamma != 0:
        # clamp: (1 - p_t)^gamma has an infinite derivative at p_t = 1 when gamma < 1
        loss = (-torch.expm1(log_pt)).clamp_min(1e-12).pow(gamma) * loss
    weights = _alpha_per_sample(alpha, targets, logits.shape[-1], logits)
    if weights is not None:
        loss = weights * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def make_loss(name: str, *, gamma: float = 2.0,
              alpha: float | Sequence[float] | torch.Tensor | None = None) -> LossFn:
    """The training loss called ``name``, as a function (logits, targets) -> scalar (mean over the batch).

    Args:
        name: "cross_entropy" or "focal".
        gamma: Focal loss focusing parameter (ignored by cross entropy).
        alpha: Focal loss class weighting (ignored by cross entropy); see :func:`focal_loss`.

    Returns:
        The loss function.

    Raises:
        SpecError: If the name is unknown or the focal options are invalid.
    """
    if name == "cross_entropy":
        return lambda logits, targets: F.cross_entropy(logits, targets.long())
    if name == "focal":
        if gamma < 0:
            raise SpecError(f"focal loss gamma must be >= 0, got {gamma}")

        def focal(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return focal_loss(logits, targets, gamma=gamma, alpha=alpha)

        return focal
    raise SpecError(f"unknown loss '{name}'; known losses: {', '.join(LOSSES)}")
