"""Improved precision and recall (Kynkäänniemi et al. 2019), k = 3.

Each set's manifold is the union of balls around its samples, each ball reaching the sample's
k-th nearest neighbour within the set. Precision: the share of generated samples inside the
real manifold (quality). Recall: the share of real samples inside the generated manifold
(coverage of the real distribution). Both on Inception pool features; higher is better.
"""

from __future__ import annotations

from gankit.metrics import Metric, register_metric
from gankit.metrics.stats import ball_counts, knn_radii

K = 3


def precision_recall(real, fake, k: int = K) -> tuple[float, float]:
    precision = (ball_counts(fake, real, knn_radii(real, k)) > 0).double().mean()
    recall = (ball_counts(real, fake, knn_radii(fake, k)) > 0).double().mean()
    return float(precision), float(recall)


class PrecisionRecall(Metric):
    min_samples = K + 1  # each sample needs k neighbours besides itself
    backbone = "inception"
    headline = "precision"
    lower_is_better = {"precision": False, "recall": False}

    def __call__(self, ev) -> dict[str, float]:
        ev.require_images("pr")
        precision, recall = precision_recall(ev.reference("inception").pool, ev.fake_features("inception")["pool"])
        return {"precision": precision, "recall": recall}

    def details(self, ev) -> dict:
        return {"k": K}


@register_metric("pr")
def build_pr() -> Metric:
    return PrecisionRecall()
