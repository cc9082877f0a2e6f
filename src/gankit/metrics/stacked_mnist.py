"""Stacked MNIST modes (Metz et al. 2017, unrolled GAN; VEEGAN; PacGAN).

A Stacked-MNIST image holds three MNIST digits, one per colour channel, so there are 10^3 =
1,000 modes. Each channel is labelled by the MNIST classifier (`gankit classifier train --data
mnist`); the three digits give the mode 100 d_R + 10 d_G + d_B. Reported: how many of the 1,000
modes appear at least once, and KL(p_gen || uniform) of the mode histogram (0 is perfect,
log 1000 = 6.91 when all samples share one mode).
"""

from __future__ import annotations

import torch

from gankit.errors import GankitError
from gankit.metrics import Metric, register_metric
from gankit.metrics.stats import kl_to_uniform

NUM_MODES = 1000


def stacked_modes(digits: torch.Tensor) -> dict[str, float]:
    """{"stacked_modes", "stacked_kl"} from (N, 3) predicted digits."""
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    counts = torch.bincount(modes, minlength=NUM_MODES)
    return {"stacked_modes": int((counts > 0).sum()), "stacked_kl": kl_to_uniform(counts)}


def classify_channels(backbone, images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3) digits, each channel classified on its own as a grey image."""
    n, channels = images.shape[:2]
    if channels != 3:
        raise GankitError(f"Stacked MNIST samples have 3 channels (one digit each), not {channels}; "
                          "train on data.name=stacked-mnist.")
    logits = backbone(images.reshape(n * 3, 1, *images.shape[2:]))["logits"]
    return logits.argmax(1).reshape(n, 3)


class StackedMNIST(Metric):
    min_samples = NUM_MODES  # fewer samples cannot show every mode; the papers draw 26,000
    backbone = "digit-classifier"
    headline = "stacked_modes"
    lower_is_better = {"stacked_modes": False, "stacked_kl": True}

    def __call__(self, ev) -> dict[str, float]:
        ev.require_images("stacked")
        return stacked_modes(classify_channels(ev.backbone("digit-classifier"), ev.fake))

    def details(self, ev) -> dict:
        return {"num_modes": NUM_MODES}


@register_metric("stacked")
def build_stacked() -> Metric:
    return StackedMNIST()
