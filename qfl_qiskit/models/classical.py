"""Classical fusion baselines: concatenation, TFN, LMF, MFB and GCN fusion.

Every baseline is a :class:`~qfl_qiskit.models.base.FusionModel`: it shares the per-modality tanh encoders and the
classification head with the quantum models, and only its ``fusion`` module (whose parameters ``fusion_parameters``
counts) differs. ``fuse`` receives encodings ``z`` (B, M, D) with absent modalities already zeroed and the presence
mask (B, M); all models are batched (Python loops run over modalities or layers only, never over samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from qfl_qiskit.errors import SpecError
from qfl_qiskit.models.base import EncoderKind, FusionModel


def _with_one(z: torch.Tensor) -> torch.Tensor:
    """Append a constant 1 to every modality's encoding: (B, M, D) -> (B, M, D + 1)."""
    return torch.cat([z, torch.ones_like(z[..., :1])], dim=-1)


def _check_positive(**values: int) -> None:
    """Raise SpecError unless every named option is an integer >= 1."""
    for key, value in values.items():
        if int(value) < 1:
            raise SpecError(f"fusion option '{key}' must be >= 1, got {value}")


class ConcatFusion(FusionModel):
    """Late-fusion baseline: concatenate the encodings, then one Linear + ReLU layer.

    fused = ReLU(W [z_1; ...; z_M] + b) with W of shape (out, M*D). The fusion layer is what gives the baseline
    fusion parameters (M*D*out + out); without it, concatenation followed by the head would be parameter free.

    Args:
        dims: Input feature count of each modality.
        num_classes: C.
        features: D, encoder output per modality.
        encoder: Encoder kind ("linear" or "mlp").
        encoder_hidden: Hidden width of MLP encoders.
        head_hidden: Hidden width of the head (0: linear head).
        out: Width of the fusion layer.

    Raises:
        SpecError: If an option is out of range.
    """

    name = "concat"

    def __init__(self, dims: Sequence[int], num_classes: int, *, features: int = 2, encoder: EncoderKind = "linear",
                 encoder_hidden: int = 32, head_hidden: int = 0, out: int = 32) -> None:
        super().__init__(dims, num_classes, features=features, encoder=encoder, encoder_hidden=encoder_hidden,
                         head_hidden=head_hidden)
        _check_positive(out=out)
        self.fusion = nn.Sequential(nn.Linear(self.num_modalities * self.features, out), nn.ReLU())
        self._finish(out)

    def fuse(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """(B, out) from the flattened encodings (B, M*D)."""
        return self.fusion(z.flatten(1))


class TFNFusion(FusionModel):
    """Tensor Fusion Network (Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment Analysis", EMNLP 2017).

    The fusion tensor is the outer product of the 1-extended encodings [z_m; 1] over all modalities, which holds
    every unimodal, bimodal, ..., M-modal product of features; it is flattened (prod_m (D + 1) entries) and mapped by
    one Linear layer to ``out`` features (no activation, so LMF is exactly a low-rank version of this layer).

    Args:
        dims: Input feature count of each modality.
        num_classes: C.
        features: D, encoder output per modality.
        encoder: Encoder kind ("linear" or "mlp").
        encoder_hidden: Hidden width of MLP encoders.
        head_hidden: Hidden width of the head (0: linear head).
        out: Output width of the fusion layer.
        max_tensor: Largest allowed fusion tensor size (D + 1)^M.

    Raises:
        SpecError: If an option is out of range or the fusion tensor exceeds ``max_tensor``.
    """

    name = "tfn"

    def __init__(self, dims: Sequence[int], num_classes: int, *, features: int = 2, encoder: EncoderKind = "linear",
                 encoder_hidden: int = 32, head_hidden: int = 0, out: int = 32, max_tensor: int = 1 << 16) -> None:
        super().__init__(dims, num_classes, features=features, encoder=encoder, encoder_hidden=encoder_hidden,
                         head_hidden=head_hidden)
        _check_positive(out=out, max_tensor=max_tensor)
        size = (self.features + 1) ** self.num_modalities
        if size > max_tensor:
            raise SpecError(f"TFN does not fit: {self.num_modalities} modalities x {self.features} features give a "
                            f"fusion tensor of (D+1)^M = {size} entries > max_tensor {max_tensor}; use LMF "
                            "(low-rank fusion) or fewer features")
        self.tensor_size = size
        self.fusion = nn.Linear(size, out)
        self._finish(out)

    def fuse(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """(B, out) from the flattened outer product of [z_m; 1] over modalities."""
        v = _with_one(z)
        tensor = v[:, 0]
        for m in range(1, v.shape[1]):
            tensor = (tensor.unsqueeze(-1) * v[:, m].unsqueeze(1)).flatten(1)
        return self.fusion(tensor)


class _LowRank(nn.Module):
    """The LMF parameters: modality factors (M, rank, D + 1, out), rank weights (rank,), bias (out,)."""

    def __init__(self, modalities: int, features: int, rank: int, out: int) -> None:
        super().__init__()
        factors = torch.empty(modalities, rank, features + 1, out)
        for m in range(modalities):
            for r in range(rank):
                nn.init.xavier_normal_(factors[m, r])
        # Start every factor's constant row near 1 so the product over M modalities neither vanishes nor explodes
        # at initialisation (xavier alone makes each factor ~N(0, <1) and the product of M of them tiny).
        factors[:, :, -1, :] += 1.0
        self.factors = nn.Parameter(factors)
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(out))


class LMFFusion(FusionModel):
    """Low-rank Multimodal Fusion (Liu et al., "Efficient Low-rank Multimodal Fusion with Modality-Specific
    Factors", ACL 2018).

    The TFN weight tensor is replaced by a rank-``rank`` CP decomposition with modality-specific factors
    W_m^(r) of shape (D + 1, out): fused = sum_r w_r * prod_m ([z_m; 1] @ W_m^(r)) + bias, never forming the
    (D + 1)^M tensor. Rank 1 is the "separable fusion" baseline.

    Args:
        dims: Input feature count of each modality.
        num_classes: C.
        features: D, encoder output per modality.
        encoder: Encoder kind ("linear" or "mlp").
        encoder_hidden: Hidden width of MLP encoders.
        head_hidden: Hidden width of the head (0: linear head).
        rank: CP rank of the fusion tensor.
        out: Output width of the fusion.

    Raises:
        SpecError: If an option is out of range.
    """

    name = "lmf"

    def __init__(self, dims: Sequence[int], num_classes: int, *, features: int = 2, encoder: EncoderKind = "linear",
                 encoder_hidden: int = 32, head_hidden: int = 0, rank: int = 4, out: int = 32) -> None:
        super().__init__(dims, num_classes, features=features, encoder=encoder, encoder_hidden=encoder_hidden,
                         head_hidden=head_hidden)
        _check_positive(rank=rank, out=out)
        self.rank = int(rank)
        self.fusion = _LowRank(self.num_modalities, self.features, self.rank, out)
        self._finish(out)

    def fuse(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """(B, out): rank-weighted sum over r of the product over modalities of the factor projections."""
        proj = torch.einsum("bmd,mrdo->bmro", _with_one(z), self.fusion.factors)
        return torch.einsum("bro,r->bo", proj.prod(dim=1), self.fusion.rank_weights) + self.fusion.bias


def _signed_sqrt(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Power normalisation sign(x) * sqrt(|x|), in the form sign(x) * (sqrt(|x| + eps) - sqrt(eps)).

    The shift keeps the value continuous and 0 at 0 while bounding the derivative by 1 / (2 sqrt(eps)) (the plain
    signed square root has an infinite derivative at 0, which turns into NaN or inf gradients).
    """
    return torch.sign(x) * (torch.sqrt(x.abs() + eps) - math.sqrt(eps))


def _l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """x / sqrt(||x||^2 + eps) along the last axis: smooth, and finite (0) with a finite gradient at x = 0."""
    return x / torch.sqrt(x.pow(2).sum(dim=-1, keepdim=True) + eps)


class MFBFusion(FusionModel):
    """Multimodal Factorized Bilinear pooling (Yu et al., "Multi-modal Factorized Bilinear Pooling with Co-Attention
    Learning for Visual Question Answering", ICCV 2017), generalised from 2 to M modalities.

    Each modality is projected (Linear with bias) to k*o features; the projections are multiplied elementwise over
    the modalities, sum-pooled over non-overlapping windows of size k (the factor), power normalised (signed square
    root, in a numerically safe form) and L2 normalised to o features. With M = 2 this is the paper's MFB module
    (without dropout).

    Args:
        dims: Input feature count of each modality.
        num_classes: C.
        features: D, encoder output per modality.
        encoder: Encoder kind ("linear" or "mlp").
        encoder_hidden: Hidden width of MLP encoders.
        head_hidden: Hidden width of the head (0: linear head).
        factor: k, the latent factor count summed per output feature.
        out: o, the output width.

    Raises:
        SpecError: If an option is out of range.
    """

    name = "mfb"

    def __init__(self, dims: Sequence[int], num_classes: int, *, features: int = 2, encoder: EncoderKind = "linear",
                 encoder_hidden: int = 32, head_hidden: int = 0, factor: int = 4, out: int = 16) -> None:
        super().__init__(dims, num_classes, features=features, encoder=encoder, encoder_hidden=encoder_hidden,
                         head_hidden=head_hidden)
        _check_positive(factor=factor, out=out)
        self.factor, self.out = int(factor), int(out)
        self.fusion = nn.ModuleList(nn.Linear(self.features, self.factor * self.out)
                                    for _ in range(self.num_modalities))
        self._finish(self.out)

    def fuse(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """(B, o): product of projections over modalities, sum-pooled over k, signed sqrt, L2 normalised."""
        joint = self.fusion[0](z[:, 0])
        for m in range(1, self.num_modalities):
            joint = joint * self.fusion[m](z[:, m])
        pooled = joint.view(-1, self.out, self.factor).sum(dim=-1)
        return _l2_normalize(_signed_sqrt(pooled))


class _GraphLayers(nn.Module):
    """GCN layer weights and, for a learned adjacency, one edge logit per unordered modality pair."""

    def __init__(self, modalities: int, features: int, hidden: int, layers: int, learn_adjacency: bool) -> None:
        super().__init__()
        widths = [features] + [hidden] * layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.edge_logits = (nn.Parameter(torch.zeros(modalities * (modalities - 1) // 2))
                            if learn_adjacency and modalities > 1 else None)


class GCNFusion(FusionModel):
    """Graph fusion with graph convolutions (Kipf & Welling, "Semi-Supervised Classification with Graph
    Convolutional Networks", ICLR 2017).

    Each modality is a graph node carrying its D encoded features. The adjacency over the M nodes is fully connected
    (edge weight 1) or learned (sigmoid of one logit per modality pair, symmetric); per sample, edges touching an
    absent modality are removed, self loops are added, and the result is normalised symmetrically,
    A_hat = D^-1/2 (A + I) D^-1/2. Each layer computes H' = ReLU(A_hat H W + b); the node features of the last layer
    are mean-pooled over the present nodes (a sample with no present modality gives zeros).

    Args:
        dims: Input feature count of each modality.
        num_classes: C.
        features: D, encoder output per modality.
        encoder: Encoder kind ("linear" or "mlp").
        encoder_hidden: Hidden width of MLP encoders.
        head_hidden: Hidden width of the head (0: linear head).
        hidden: Width of every GCN layer (and of the fused vector).
        layers: Number of GCN layers.
        adjacency: "full" (fixed, fully connected) or "learned".

    Raises:
        SpecError: If an option is out of range.
    """

    name = "gcn"

    def __init__(self, dims: Sequence[int], num_classes: int, *, features: int = 2, encoder: EncoderKind = "linear",
                 encoder_hidden: int = 32, head_hidden: int = 0, hidden: int = 16, layers: int = 2,
                 adjacency: Literal["full", "learned"] = "full") -> None:
        super().__init__(dims, num_classes, features=features, encoder=encoder, encoder_hidden=encoder_hidden,
                         head_hidden=head_hidden)
        _check_positive(hidden=hidden, layers=layers)
        if adjacency not in ("full", "learned"):
            raise SpecError(f"unknown GCN adjacency '{adjacency}'; use full or learned")
        self.adjacency = adjacency
        self.fusion = _GraphLayers(self.num_modalities, self.features, hidden, layers, adjacency == "learned")
        self._finish(hidden)

    def _base_adjacency(self, z: torch.Tensor) -> torch.Tensor:
        """(M, M) edge weights without self loops: ones, or the symmetric sigmoid of the learned logits."""
        m = self.num_modalities
        if self.fusion.edge_logits is None:
            return torch.ones(m, m, dtype=z.dtype, device=z.device) - torch.eye(m, dtype=z.dtype, device=z.device)
        rows, cols = torch.triu_indices(m, m, offset=1, device=z.device)
        upper = torch.zeros(m, m, dtype=z.dtype, device=z.device)
        upper = upper.index_put((rows, cols), torch.sigmoid(self.fusion.edge_logits).to(z.dtype))
        return upper + upper.T

    def normalized_adjacency(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """Per-sample A_hat (B, M, M): absent modalities disconnected, self loops, symmetric normalisation."""
        p = presence.to(z.dtype)
        adj = self._base_adjacency(z) * (p.unsqueeze(2) * p.unsqueeze(1))
        adj = adj + torch.eye(self.num_modalities, dtype=z.dtype, device=z.device)
        inv_sqrt = adj.sum(dim=-1).rsqrt()  # degree >= 1 thanks to the self loop
        return inv_sqrt.unsqueeze(2) * adj * inv_sqrt.unsqueeze(1)

    def fuse(self, z: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
        """(B, hidden): GCN layers over the modality graph, then the mean over present nodes."""
        a_hat = self.normalized_adjacency(z, presence)
        h = z
        for layer in self.fusion.layers:
            h = torch.relu(torch.bmm(a_hat, F.linear(h, layer.weight)) + layer.bias)
        p = presence.to(z.dtype).unsqueeze(-1)
        return (h * p).sum(dim=1) / p.sum(dim=1).clamp(min=1.0)
