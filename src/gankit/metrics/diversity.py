"""Sample diversity: how spread out the generated samples are, as a share of the real data's spread.

    diversity = mean ||x_i - x_j|| over pairs of generated samples
                / mean ||y_i - y_j|| over pairs of real samples

in the data space itself (pixels in [-1, 1], or 2-D points), on at most `MAX_SAMPLES` of each.
It needs no backbone, so it works on every dataset and costs milliseconds. It is 1 when the
samples vary as much as the data, and near 0 when a generator has collapsed to one image:
the case FID-style scores can miss, since a run whose every sample is the same checkerboard
can score a classifier-FID that is "only" 1.7x its best (issue 15). It is a blunt measure of
quality and no ranking of good generators; the training evaluator watches it against
`eval.diversity_floor` (README, "Collapse"). The mean pairwise distance as a collapse signal
follows the spirit of Che et al. 2017 and of minibatch discrimination (Salimans et al. 2016,
sec. 3.2), which both look at how far apart a batch's samples are.
"""

from __future__ import annotations

import torch

from gankit.errors import GankitError
from gankit.metrics import Metric, register_metric

MAX_SAMPLES = 1000  # pairs grow as n^2; 1000 samples give ~500k pairs, plenty for a mean


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean L2 distance over the distinct pairs of the first MAX_SAMPLES rows of (N, ...) x."""
    flat = x[:MAX_SAMPLES].reshape(min(len(x), MAX_SAMPLES), -1).double()
    if len(flat) < 2:
        raise GankitError(f"diversity needs at least 2 samples, not {len(flat)}; raise eval.num_samples.")
    return float(torch.pdist(flat).mean())


def real_samples(dataset, n: int) -> torch.Tensor:
    """n real samples in G's range from the run's dataset, the same ones every time (seed 0)."""
    from gankit.metrics.evaluate import real_images

    if hasattr(dataset, "sample"):  # 2-D mixtures: points drawn afresh, from a fixed seed
        return dataset.sample(n, torch.Generator().manual_seed(0))[0]
    return real_images(dataset, n)


class Diversity(Metric):
    headline = "diversity"
    lower_is_better = {"diversity": False}

    def __call__(self, ev) -> dict[str, float]:
        self.real = mean_pairwise_distance(real_samples(ev.run_dataset(), MAX_SAMPLES))  # well under a second
        return {"diversity": mean_pairwise_distance(ev.fake) / self.real}

    def details(self, ev) -> dict:
        return {"real_mean_distance": round(self.real, 6), "space": "data (pixels in [-1, 1] or points)",
                "max_samples": MAX_SAMPLES}


@register_metric("diversity")
def build_diversity() -> Metric:
    return Diversity()
