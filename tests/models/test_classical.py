"""Classical fusion baselines: shapes, parameter counts, gradients, missing modalities, learning."""

from __future__ import annotations

import itertools

import pytest
import torch

from qfl_qiskit.errors import SpecError
from qfl_qiskit.models.classical import ConcatFusion, GCNFusion, LMFFusion, MFBFusion, TFNFusion

MODELS = {
    "concat": (ConcatFusion, {"out": 8}),
    "tfn": (TFNFusion, {"out": 8}),
    "lmf": (LMFFusion, {"rank": 3, "out": 8}),
    "lmf_rank1": (LMFFusion, {"rank": 1, "out": 8}),
    "mfb": (MFBFusion, {"factor": 3, "out": 5}),
    "gcn": (GCNFusion, {"hidden": 6, "layers": 2}),
    "gcn_learned": (GCNFusion, {"hidden": 6, "layers": 3, "adjacency": "learned"}),
}


def _inputs(dims: list[int], batch: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, d, generator=g) for d in dims]


def _build(key: str, dims: list[int], num_classes: int = 3, features: int = 2, **extra):
    cls, options = MODELS[key]
    torch.manual_seed(0)
    return cls(dims, num_classes, features=features, **{**options, **extra})


@pytest.mark.parametrize("key", sorted(MODELS))
@pytest.mark.parametrize("modalities", [1, 2, 6])
def test_output_shapes(key: str, modalities: int) -> None:
    dims = [3 + m for m in range(modalities)]
    model = _build(key, dims)
    xs = _inputs(dims, 5)
    logits = model(xs)
    assert logits.shape == (5, 3)
    z = model.encoders(xs)
    assert model.fuse(z, torch.ones(5, modalities, dtype=torch.bool)).shape == (5, model.fused_features)
    assert torch.isfinite(logits).all()


def _expected_fusion_parameters(key: str, m: int, d: int) -> int:
    """Hand formulas of the fusion-step parameter count (options as in MODELS)."""
    if key == "concat":  # Linear(M*D, out)
        out = 8
        return m * d * out + out
    if key == "tfn":  # Linear((D+1)^M, out)
        out = 8
        return (d + 1) ** m * out + out
    if key in ("lmf", "lmf_rank1"):  # factors (M, rank, D+1, out), rank weights, bias
        rank, out = (3, 8) if key == "lmf" else (1, 8)
        return m * rank * (d + 1) * out + rank + out
    if key == "mfb":  # M x Linear(D, k*o)
        k, o = 3, 5
        return m * (d * k * o + k * o)
    if key == "gcn":  # Linear(D, h) then (L-1) x Linear(h, h)
        h, layers = 6, 2
        return d * h + h + (layers - 1) * (h * h + h)
    if key == "gcn_learned":  # plus one edge logit per unordered modality pair
        h, layers = 6, 3
        return d * h + h + (layers - 1) * (h * h + h) + m * (m - 1) // 2
    raise AssertionError(key)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_fusion_parameter_count(key: str) -> None:
    m, d = 3, 2
    model = _build(key, [4, 5, 6], features=d)
    assert model.fusion_parameters == _expected_fusion_parameters(key, m, d)
    assert model.total_parameters > model.fusion_parameters


@pytest.mark.parametrize("key", sorted(MODELS))
def test_gradients_reach_every_parameter_with_missing_modalities(key: str) -> None:
    dims = [3, 4, 2, 5]
    model = _build(key, dims)
    xs = _inputs(dims, 4)
    presence = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=torch.bool)
    torch.nn.functional.cross_entropy(model(xs, presence), torch.tensor([0, 1, 2, 1])).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    for name, param in model.fusion.named_parameters():
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("key", sorted(MODELS))
def test_absent_modality_input_changes_nothing(key: str) -> None:
    dims = [3, 4, 2]
    model = _build(key, dims)
    xs = _inputs(dims, 6)
    presence = torch.tensor([[1, 0, 1]] * 3 + [[0, 1, 0]] * 3, dtype=torch.bool)
    changed = [x.clone() for x in xs]
    changed[1][:3] += 10.0  # modality 1 is absent in the first three samples
    changed[0][3:] -= 7.0  # modalities 0 and 2 are absent in the last three
    changed[2][3:] *= -3.0
    torch.testing.assert_close(model(changed, presence), model(xs, presence))


def test_gcn_masks_absent_nodes_out_of_the_graph() -> None:
    """Even with non-zero features on an absent node, GCN's output is that of the graph without the node."""
    torch.manual_seed(0)
    model3 = GCNFusion([2, 2, 2], 2, features=3, hidden=5, layers=2)
    model2 = GCNFusion([2, 2], 2, features=3, hidden=5, layers=2)
    model2.fusion.load_state_dict(model3.fusion.state_dict())
    z = torch.rand(4, 3, 3) * 2 - 1
    presence3 = torch.tensor([[1, 1, 0]] * 4, dtype=torch.bool)
    presence2 = torch.ones(4, 2, dtype=torch.bool)
    torch.testing.assert_close(model3.fuse(z, presence3), model2.fuse(z[:, :2], presence2))
    garbage = z.clone()
    garbage[:, 2] = 0.9
    torch.testing.assert_close(model3.fuse(garbage, presence3), model3.fuse(z, presence3))


def test_gcn_adjacency_is_symmetric_normalised() -> None:
    model = GCNFusion([2, 2, 2], 2, features=2, adjacency="learned")
    with torch.no_grad():
        model.fusion.edge_logits.copy_(torch.tensor([0.3, -1.0, 2.0]))
    presence = torch.tensor([[1, 1, 1], [1, 0, 1]], dtype=torch.bool)
    a_hat = model.normalized_adjacency(torch.zeros(2, 3, 2), presence)
    torch.testing.assert_close(a_hat, a_hat.transpose(1, 2))
    assert a_hat[1, 1, 0] == 0 and a_hat[1, 0, 1] == 0 and a_hat[1, 1, 1] == 1
    w = torch.sigmoid(torch.tensor(-1.0))  # edge (0, 2)
    torch.testing.assert_close(a_hat[1, 0, 2], w / (1 + w))


def test_tfn_refuses_twelve_modalities() -> None:
    with pytest.raises(SpecError, match="LMF"):
        TFNFusion([1] * 12, 2, features=4)


def test_lmf_equals_tfn_with_the_reconstructed_weight_tensor() -> None:
    """LMF is TFN with a rank-r CP weight tensor: rebuild that tensor and compare the fused outputs."""
    torch.manual_seed(1)
    m, d, rank, out = 3, 2, 2, 4
    lmf = LMFFusion([2] * m, 2, features=d, rank=rank, out=out)
    tfn = TFNFusion([2] * m, 2, features=d, out=out)
    factors, weights = lmf.fusion.factors.detach(), lmf.fusion.rank_weights.detach()
    tensor = torch.zeros((d + 1,) * m + (out,))
    for idx in itertools.product(range(d + 1), repeat=m):
        prod = torch.ones(rank, out)
        for mod, i in enumerate(idx):
            prod = prod * factors[mod, :, i, :]
        tensor[idx] = (weights.unsqueeze(1) * prod).sum(0)
    with torch.no_grad():
        tfn.fusion.weight.copy_(tensor.reshape(-1, out).T)
        tfn.fusion.bias.copy_(lmf.fusion.bias)
    z = torch.rand(7, m, d) * 2 - 1
    presence = torch.ones(7, m, dtype=torch.bool)
    torch.testing.assert_close(lmf.fuse(z, presence), tfn.fuse(z, presence))


def test_lmf_rank1_represents_the_cross_modal_product_exactly() -> None:
    """Hand-set rank-1 LMF weights compute z1 * z2, so sign(x1 * x2) is classified perfectly."""
    model = LMFFusion([1, 1], 2, features=1, rank=1, out=1)
    with torch.no_grad():
        for enc in model.encoders.encoders:
            enc[0].weight.fill_(1.0)
            enc[0].bias.zero_()
        model.fusion.factors.copy_(torch.tensor([1.0, 0.0]).view(1, 1, 2, 1).expand(2, 1, 2, 1))
        model.fusion.rank_weights.fill_(1.0)
        model.fusion.bias.zero_()
        model.head.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model.head.bias.zero_()
    xs, y = _product_task(200, seed=3)
    assert (model(xs).argmax(1) == y).all()


def test_mfb_zero_pooled_features_have_finite_gradients() -> None:
    """All-zero MFB projections hit the signed square root and L2 norm at 0: gradients must stay finite."""
    torch.manual_seed(0)
    model = MFBFusion([2, 2], 2, features=2, factor=2, out=3)
    with torch.no_grad():
        for p in model.fusion.parameters():
            p.zero_()
    xs = _inputs([2, 2], 4)
    presence = torch.tensor([[1, 1], [0, 0], [1, 0], [0, 1]], dtype=torch.bool)
    logits = model(xs, presence)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1])).backward()
    assert torch.isfinite(logits).all()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def _product_task(n: int, seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x1, x2 = torch.randn(n, 1, generator=g), torch.randn(n, 1, generator=g)
    return [x1, x2], (x1 * x2 > 0).squeeze(1).long()


def _train_accuracy(model, xs: list[torch.Tensor], y: torch.Tensor, steps: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xs), y).backward()
        opt.step()
    with torch.no_grad():
        return (model(xs).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("key", sorted(MODELS))
def test_learns_a_separable_task(key: str) -> None:
    dims = [3, 2, 4]
    xs = _inputs(dims, 128, seed=5)
    y = (xs[0][:, 0] > 0).long()
    model = _build(key, dims, num_classes=2)
    assert _train_accuracy(model, xs, y, steps=200) > 0.9


def test_lmf_rank1_learns_the_cross_modal_product() -> None:
    xs, y = _product_task(256, seed=0)
    torch.manual_seed(0)
    model = LMFFusion([1, 1], 2, features=1, rank=1, out=8)
    assert _train_accuracy(model, xs, y, steps=300) > 0.95


@pytest.mark.parametrize("options", [{"out": 0}, {"max_tensor": 0}])
def test_bad_options_raise(options: dict) -> None:
    with pytest.raises(SpecError):
        TFNFusion([2, 2], 2, features=2, **options)
    with pytest.raises(SpecError, match="adjacency"):
        GCNFusion([2, 2], 2, features=2, adjacency="star")  # type: ignore[arg-type]
