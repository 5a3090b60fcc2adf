"""Cross entropy and focal loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from qfl_qiskit.errors import SpecError
from qfl_qiskit.models.losses import focal_loss, make_loss


def _batch(seed: int = 0, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 4, generator=g, dtype=torch.float64) * scale, torch.randint(0, 4, (16,), generator=g)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_focal_with_gamma_zero_is_cross_entropy(scale: float) -> None:
    logits, targets = _batch(scale=scale)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0), F.cross_entropy(logits, targets))
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0, reduction="none"),
                               F.cross_entropy(logits, targets, reduction="none"))
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0, reduction="sum"),
                               F.cross_entropy(logits, targets, reduction="sum"))


def test_focal_down_weights_well_classified_samples() -> None:
    logits, targets = _batch(seed=1)
    ce = F.cross_entropy(logits, targets, reduction="none")
    focal = focal_loss(logits, targets, gamma=2.0, reduction="none")
    p_t = torch.softmax(logits, dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(focal / ce, (1 - p_t) ** 2)
    assert (focal < ce).all()
    order = torch.argsort(p_t)  # the better classified, the smaller the focal share of the CE loss
    assert (torch.diff((focal / ce)[order]) <= 0).all()
    easy = torch.tensor([[5.0, 0.0]], dtype=torch.float64)
    hard = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    label = torch.tensor([0])
    ratio_easy = focal_loss(easy, label) / F.cross_entropy(easy, label)
    ratio_hard = focal_loss(hard, label) / F.cross_entropy(hard, label)
    assert ratio_easy < 0.01 < 0.1 < ratio_hard


def test_per_class_alpha_matches_hand_computation() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    targets = torch.tensor([0, 2, 1])
    alpha, gamma = [0.25, 0.5, 2.0], 2.0
    expected = []
    for row, t in zip(logits.tolist(), targets.tolist()):
        p_t = math.exp(row[t]) / sum(math.exp(v) for v in row)
        expected.append(-alpha[t] * (1 - p_t) ** gamma * math.log(p_t))
    got = focal_loss(logits, targets, gamma=gamma, alpha=alpha, reduction="none")
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(focal_loss(logits, targets, gamma=gamma, alpha=torch.tensor(alpha)),
                               torch.tensor(sum(expected) / 3, dtype=torch.float64))


def test_float_alpha_scales_the_loss() -> None:
    logits, targets = _batch(seed=2)
    torch.testing.assert_close(focal_loss(logits, targets, alpha=0.25), 0.25 * focal_loss(logits, targets))


def test_focal_gradients_are_finite_on_saturated_logits() -> None:
    logits = torch.tensor([[80.0, -80.0], [-80.0, 80.0]], requires_grad=True)
    for gamma in (0.0, 0.5, 2.0):
        logits.grad = None
        focal_loss(logits, torch.tensor([0, 0]), gamma=gamma).backward()
        assert torch.isfinite(logits.grad).all()


def test_make_loss() -> None:
    logits, targets = _batch(seed=3)
    torch.testing.assert_close(make_loss("cross_entropy")(logits, targets), F.cross_entropy(logits, targets))
    torch.testing.assert_close(make_loss("focal", gamma=0.0)(logits, targets), F.cross_entropy(logits, targets))
    torch.testing.assert_close(make_loss("focal", gamma=1.5, alpha=[1, 2, 3, 4])(logits, targets),
                               focal_loss(logits, targets, gamma=1.5, alpha=[1, 2, 3, 4]))
    assert make_loss("focal")(logits, targets).shape == ()


def test_bad_loss_options_raise() -> None:
    logits, targets = _batch()
    with pytest.raises(SpecError, match="cross_entropy, focal"):
        make_loss("hinge")
    with pytest.raises(SpecError, match="gamma"):
        make_loss("focal", gamma=-1.0)
    with pytest.raises(SpecError, match="3 class weights"):
        focal_loss(logits, targets, alpha=[1.0, 1.0, 1.0])
    with pytest.raises(SpecError, match="reduction"):
        focal_loss(logits, targets, reduction="max")  # type: ignore[arg-type]
