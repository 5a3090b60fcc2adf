"""The training loop: it learns, keeps the best epoch, stops early, and resumes exactly where it stopped."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qfl_qiskit.data import MultimodalDataset, to_tensors
from qfl_qiskit.models import QFLFusion
from qfl_qiskit.training import CheckpointError, classification_metrics, drop_modalities, evaluate, fit


def tiny(n=96, seed=0):
    """Two modalities; the label is the sign of the first feature of modality 0 (learnable in a few epochs)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)
    return MultimodalDataset(modalities=(a, b), labels=(a[:, 0] > 0).astype(int), num_classes=2)


def model(seed=0):
    torch.manual_seed(seed)
    return QFLFusion((3, 2), 2, features=1, observables=4, weight_seed=seed)


def params(m):
    return torch.cat([p.detach().flatten().double() for p in m.parameters()])


def test_fit_learns_and_keeps_the_best_epoch():
    train, val = to_tensors(tiny(96, 0)), to_tensors(tiny(64, 1))
    m = model()
    before = evaluate(m, val, num_classes=2, loss_fn=F.cross_entropy)
    result = fit(m, train, val, num_classes=2, loss_fn=F.cross_entropy, lr=0.05, epochs=6, batch_size=16,
                 patience=0, monitor="loss")
    after = evaluate(m, val, num_classes=2, loss_fn=F.cross_entropy)
    assert after["accuracy"] > 0.85 and after["loss"] < before["loss"]
    best = result.history[result.best_epoch - 1]
    assert after["loss"] == pytest.approx(best["val_loss"], abs=1e-9)  # the model holds the best epoch
    assert best["val_loss"] == min(r["val_loss"] for r in result.history)


def test_early_stopping_counts_epochs_without_improvement():
    train, val = to_tensors(tiny(32, 0)), to_tensors(tiny(32, 1))
    result = fit(model(), train, val, num_classes=2, loss_fn=F.cross_entropy, lr=1e-12, epochs=10,
                 batch_size=16, patience=2, monitor="accuracy")
    # a learning rate of 1e-12 changes nothing: epoch 1 is best, epochs 2 and 3 fail to improve, then stop
    assert result.best_epoch == 1 and len(result.history) == 3 and result.stopped_early


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    train, val = to_tensors(tiny(64, 0)), to_tensors(tiny(32, 1))
    kwargs = dict(num_classes=2, loss_fn=F.cross_entropy, lr=0.05, epochs=4, batch_size=16, patience=0, seed=3)
    straight = model()
    ref = fit(straight, train, val, **kwargs)

    class Crash(Exception):
        pass

    def crash_after_epoch_2(event):
        if event["event"] == "epoch_end" and event["epoch"] == 2:
            raise Crash

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(Crash):
        fit(model(), train, val, checkpoint=ckpt, fingerprint="run-a", progress=crash_after_epoch_2, **kwargs)
    resumed_model = model(seed=9)  # different initial weights: everything must come from the checkpoint
    resumed = fit(resumed_model, train, val, checkpoint=ckpt, resume=True, fingerprint="run-a", **kwargs)
    assert resumed.resumed_from == 2
    assert [r["train_loss"] for r in resumed.history] == pytest.approx([r["train_loss"] for r in ref.history],
                                                                        abs=1e-12)
    torch.testing.assert_close(params(resumed_model), params(straight), atol=1e-12, rtol=0)
    with pytest.raises(CheckpointError, match="another run"):
        fit(model(), train, val, checkpoint=ckpt, resume=True, fingerprint="run-b", **kwargs)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        fit(model(), train, val, checkpoint=ckpt, resume=True, fingerprint="run-a", **kwargs)


def test_metrics_against_hand_computed_values():
    labels = np.array([0, 0, 1, 2, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1],
                      [0.1, 0.2, 0.7], [0.5, 0.1, 0.4], [0.1, 0.1, 0.8]])
    m = classification_metrics(labels, probs, num_classes=3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # per class F1: class 0: p=1/2, r=1/2 -> 0.5; class 1: p=1/2, r=1 -> 2/3; class 2: p=1, r=2/3 -> 0.8
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    # one-vs-rest AUCs by pair counting: class 0: 7/8; class 1: 1; class 2: 1
    assert m["macro_auc"] == pytest.approx((7 / 8 + 1 + 1) / 3)
    only_two = classification_metrics(np.array([0, 2, 2]), probs[[0, 3, 5]], num_classes=3)
    assert only_two["macro_auc"] == pytest.approx(1.0)  # absent class 1 is skipped, not an error


def test_drop_modalities_rate_and_no_empty_sample():
    ds = MultimodalDataset(modalities=tuple(np.zeros((4000, 2), np.float32) for _ in range(3)),
                           labels=np.arange(4000) % 2)
    dropped = drop_modalities(ds, 0.3, seed=5)
    assert dropped.presence.any(axis=1).all()
    assert abs((~dropped.presence).mean() - 0.3) < 0.03  # slightly below 0.3: all-absent rows get one back
    np.testing.assert_array_equal(dropped.presence, drop_modalities(ds, 0.3, seed=5).presence)
    assert not np.array_equal(dropped.presence, drop_modalities(ds, 0.3, seed=6).presence)
    assert drop_modalities(ds, 0.0, seed=5) is ds


def test_mma_training_leaves_a_never_present_modality_untouched():
    from qfl_qiskit.circuits import build_mma
    from qfl_qiskit.models import MMAFusion

    ds = tiny(64, 0)
    presence = np.ones((64, 2), dtype=bool)
    presence[:, 1] = False  # modality 1 never seen in training
    train = to_tensors(MultimodalDataset(modalities=ds.modalities, labels=ds.labels, presence=presence))
    torch.manual_seed(0)
    m = MMAFusion((3, 2), 2, qubits_per_modality=1)
    before = m.fusion.weights.detach().clone()
    fit(m, train, train, num_classes=2, loss_fn=F.cross_entropy, lr=0.05, epochs=2, batch_size=16, patience=0)
    groups = build_mma(m.spec).metadata["weight_groups"]
    (lo, hi), (lo0, hi0) = groups["modality_1"], groups["modality_0"]
    after = m.fusion.weights.detach()
    assert torch.equal(after[lo:hi], before[lo:hi])
    assert not torch.equal(after[lo0:hi0], before[lo0:hi0])
