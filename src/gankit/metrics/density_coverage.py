"""Density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics"), k = 5.

Only the real samples' k-NN balls are used, since real data has no outliers to inflate them.
Density: how many real balls contain each generated sample, divided by k and averaged (about 1
when the distributions match; it can exceed 1). Coverage: the share of real balls that contain
at least one generated sample. Both on Inception pool features; higher is better.
"""

from __future__ import annotations

from gankit.metrics import Metric, register_metric
from gankit.metrics.stats import ball_counts, knn_radii, nearest_distance

K = 5  # the paper's recommended k


def density_coverage(real, fake, k: int = K) -> tuple[float, float]:
    radii = knn_radii(real, k)
    density = ball_counts(fake, real, radii).double().mean() / k
    coverage = (nearest_distance(real, fake) < radii.to(real.device)).double().mean()
    return float(density), float(coverage)


class DensityCoverage(Metric):
    min_samples = K + 1  # each sample needs k neighbours besides itself
    backbone = "inception"
    headline = "coverage"
    lower_is_better = {"density": False, "coverage": False}

    def __call__(self, ev) -> dict[str, float]:
        ev.require_images("dc")
        density, coverage = density_coverage(ev.reference("inception").pool, ev.fake_features("inception")["pool"])
        return {"density": density, "coverage": coverage}

    def details(self, ev) -> dict:
        return {"k": K}


@register_metric("dc")
def build_dc() -> Metric:
    return DensityCoverage()
