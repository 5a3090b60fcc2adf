"""Classification metrics of a trained model: accuracy, macro-F1, macro one-vs-rest ROC AUC (scikit-learn's)."""

from __future__ import annotations

import warnings

import numpy as np


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, *, num_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 and macro one-vs-rest ROC AUC of predicted class probabilities.

    The AUC averages over the classes present in ``labels`` (a class absent from a small split has no ROC curve);
    it is NaN when fewer than two classes are present.

    Args:
        labels: True classes (N,).
        probabilities: Predicted probabilities (N, C), rows summing to 1.
        num_classes: C.

    Returns:
        ``{"accuracy", "macro_f1", "macro_auc"}``.
    """
    from sklearn.metrics import f1_score, roc_auc_score

    labels = np.asarray(labels)
    probs = np.asarray(probabilities, dtype=np.float64)
    pred = probs.argmax(axis=1)
    out = {
        "accuracy": float((pred == labels).mean()) if len(labels) else float("nan"),
        "macro_f1": float(f1_score(labels, pred, average="macro", labels=np.unique(labels), zero_division=0)),
    }
    present = np.unique(labels)
    if len(present) < 2:
        out["macro_auc"] = float("nan")
        return out
    aucs = []
    for c in present:  # one-vs-rest per present class: robust to classes missing from the split
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aucs.append(roc_auc_score(labels == c, probs[:, c]))
    out["macro_auc"] = float(np.mean(aucs))
    return out
