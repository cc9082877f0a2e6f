"""Mode metrics for 2-D Gaussian mixtures (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018).

For a mixture with means mu_1..mu_K and component std sigma (PacGAN's protocol, the authors'
MetricLogger; VEEGAN sec. 5.1):
- a sample is high-quality when it lies within 3 sigma of its nearest mean;
- a mode is covered when it is the nearest mean of at least one high-quality sample;
- the reverse KL is KL(p_gen || uniform) of the histogram of high-quality samples over their
  nearest modes: 0 when every mode gets the same share, log K when all sit in one mode.
The papers score 2,500 samples (`eval.num_samples=2500`).
With no high-quality sample at all the histogram is undefined; the KL is then reported as log K,
its largest value, and the high-quality share (0) says why.
"""

from __future__ import annotations

import math

import torch

from gankit.errors import GankitError
from gankit.metrics import Metric, register_metric
from gankit.metrics.stats import kl_to_uniform

THRESHOLD_STDS = 3.0


def nearest_modes(samples: torch.Tensor, means: torch.Tensor, std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """((N,) index of each sample's nearest mode, (N,) whether it is high quality: within 3 std of it)."""
    nearest, mode = torch.cdist(samples.double(), means.double()).min(1)
    return mode, nearest < THRESHOLD_STDS * std


def mode_metrics(samples: torch.Tensor, means: torch.Tensor, std: float) -> dict[str, float]:
    """{"modes_covered", "high_quality_pct", "mode_kl"} for (N, 2) samples."""
    mode, good = nearest_modes(samples, means, std)
    k = len(means)
    counts = torch.bincount(mode[good], minlength=k)  # high-quality samples per nearest mode
    covered = int((counts > 0).sum())
    kl = kl_to_uniform(counts) if good.any() else math.log(k)
    return {"modes_covered": covered, "high_quality_pct": 100.0 * float(good.double().mean()), "mode_kl": kl}


class ModeMetrics(Metric):
    # Coverage and the mode histogram of a handful of points say nothing; VEEGAN and PacGAN draw 2,500.
    min_samples = 100
    headline = "modes_covered"
    lower_is_better = {"modes_covered": False, "high_quality_pct": False, "mode_kl": True}

    def __call__(self, ev) -> dict[str, float]:
        dataset = ev.run_dataset()
        if ev.fake.dim() != 2 or not hasattr(dataset, "means"):
            raise GankitError("the modes metric is for 2-D Gaussian mixtures (ring8, grid25); use fid, cfid, "
                              "pr or stacked for images.")
        self.k, self.std = len(dataset.means), float(dataset.std)
        return mode_metrics(ev.fake, dataset.means, dataset.std)

    def details(self, ev) -> dict:
        return {"num_modes": self.k, "threshold": f"{THRESHOLD_STDS:g} std = {THRESHOLD_STDS * self.std:g}"}


@register_metric("modes")
def build_modes() -> Metric:
    return ModeMetrics()
