"""What every fusion model shares: per-modality encoders, a classification head, and the model frame.

A fusion model maps a batch of modality tensors [(B, d_m)] and a presence mask (B, M) to class logits (B, C):
encoders bring every modality to D features in (-1, 1) (tanh), absent modalities are zeroed, the model's own
``fuse`` combines the (B, M, D) encodings into one vector, and the head classifies it. Quantum and classical models
use the same encoders and head, so their comparison isolates the fusion step; ``fusion_parameters`` counts the
fusion step's trainable parameters only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from qfl_qiskit.errors import DataError, SpecError

EncoderKind = Literal["linear", "mlp"]


class ModalityEncoders(nn.Module):
    """One encoder per modality to D features, squashed to (-1, 1) by tanh.

    Args:
        dims: Input feature count d_m of each modality.
        features: D, the output features per modality.
        kind: "linear" (Linear + tanh) or "mlp" (Linear, ReLU, Linear + tanh).
        hidden: Hidden width of the "mlp" encoders.
    """

    def __init__(self, dims: Sequence[int], features: int, *, kind: EncoderKind = "linear", hidden: int = 32) -> None:
        super().__init__()
        if not dims or min(dims) < 1 or features < 1 or hidden < 1:
            raise SpecError(f"encoders need modality dims >= 1 and features, hidden >= 1; got dims {list(dims)}, "
                            f"features {features}, hidden {hidden}")
        if kind not in ("linear", "mlp"):
            raise SpecError(f"unknown encoder '{kind}'; use linear or mlp")
        self.dims, self.features, self.kind = tuple(int(d) for d in dims), int(features), kind

        def one(d: int) -> nn.Module:
            if kind == "linear":
                return nn.Sequential(nn.Linear(d, features), nn.Tanh())
            return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, features), nn.Tanh())

        self.encoders = nn.ModuleList(one(d) for d in self.dims)

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Encodings (B, M, D) of modality tensors [(B, d_m)]."""
        return torch.stack([enc(x) for enc, x in zip(self.encoders, xs)], dim=1)


def make_head(in_features: int, num_classes: int, *, hidden: int = 0) -> nn.Module:
    """The classification head: Linear, or Linear-ReLU-Linear when ``hidden`` > 0."""
    if hidden > 0:
        return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
    return nn.Linear(in_features, num_classes)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (elements) of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class FusionModel(nn.Module):
    """Encoders -> zero absent modalities -> ``fuse`` -> head.

    Subclasses set ``self.fusion`` (the module whose parameters are the fusion parameters; may be an empty
    ``nn.Module``), call :meth:`_finish` with the width of the fused vector, and implement :meth:`fuse`.

    Args:
        dims: Input feature count of each modality.
        num_classes: C.
        features: D, encoder output per modality.
        encoder: Encoder kind.
        encoder_hidden: Hidden width of MLP encoders.
        head_hidden: Hidden width of the head (0: linear head).
    """

    name = "fusion"

    def __init__(self, dims: Sequence[int], num_classes: int, *, features: int, encoder: EncoderKind = "linear",
                 encoder_hidden: int = 32, head_hidden: int = 0) -> None:
        super().__init__()
        if num_classes < 2:
            raise SpecError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.num_modalities, self.num_classes, self.features = len(dims), int(num_classes), int(features)
        self.encoders = ModalityEncoders(dims, features, kind=encoder, hidden=encoder_hidden)
        self._head_hidden = head_hidden

    def _finish(self, fused_features: int) -> None:
        """Create the head once the subclass knows the fused vector's width."""
        self.fused_features = int(fused_features)
        self.head = make_head(self.fused_features, self.num_classes, hidden=self._head_hidden)

    def fuse(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """Fused vectors (B, F) from encodings (B, M, D) (absent modalities zeroed) and presence (B, M)."""
        raise NotImplementedError

    def forward(self, xs: Sequence[torch.Tensor], presence: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, C) for modality tensors [(B, d_m)] and an optional presence mask (B, M) (default: all)."""
        if len(xs) != self.num_modalities:
            raise DataError(f"model '{self.name}' expects {self.num_modalities} modalities, got {len(xs)}")
        bsz = xs[0].shape[0]
        if presence is None:
            presence = torch.ones(bsz, self.num_modalities, dtype=torch.bool)
        z = self.encoders(xs) * presence.unsqueeze(-1).to(xs[0].dtype)
        return self.head(self.fuse(z, presence))

    @property
    def fusion_parameters(self) -> int:
        """Trainable parameters of the fusion step only."""
        return count_parameters(self.fusion)

    @property
    def total_parameters(self) -> int:
        """All trainable parameters (encoders, fusion, head)."""
        return count_parameters(self)
