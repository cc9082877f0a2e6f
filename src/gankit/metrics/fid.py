"""Fréchet Inception Distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule").

FID fits a Gaussian to the backbone's pool features of real and of generated images and reports
the Fréchet distance between the two. `fid` uses the TF-FID Inception's 2048-d pool3 features;
`cfid` uses the dataset classifier's 128-d penultimate features (TF-GAN's MNIST practice), which
runs in seconds on a CPU with no download. Lower is better; the value depends on the sample
count (it is biased upward for small n), so compare only numbers with the same n.
"""

from __future__ import annotations

from gankit.metrics import Metric, register_metric
from gankit.metrics.stats import feature_statistics, frechet_distance


class FrechetDistance(Metric):
    def __init__(self, backbone: str, scalar: str):
        self.backbone, self.headline = backbone, scalar
        self.lower_is_better = {scalar: True}

    def __call__(self, ev) -> dict[str, float]:
        ev.require_images(self.headline)
        fake = feature_statistics(ev.fake_features(self.backbone)["pool"])
        real = ev.reference(self.backbone).stats
        return {self.headline: frechet_distance(fake, real, what=self.headline.upper())}


@register_metric("fid")
def build_fid() -> Metric:
    return FrechetDistance("inception", "fid")


@register_metric("cfid")
def build_classifier_fid() -> Metric:
    return FrechetDistance("classifier", "cfid")
