"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs").

IS = exp(E_x KL(p(y|x) || p(y))): high when each sample is classified confidently and the
classes are spread out. As in the paper, the samples are cut into 10 equal splits (in sample
order) and the mean and std over splits are reported. `is` uses the TF Inception's 1008
unbiased logits (as torch-fidelity does); `cis` uses the dataset classifier's logits, whose
maximum is the number of classes (10 for MNIST). Higher is better.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.errors import GankitError
from gankit.metrics import Metric, register_metric

SPLITS = 10


def inception_score(logits: torch.Tensor, splits: int = SPLITS) -> tuple[float, float]:
    """(mean, std) over `splits` consecutive chunks of (N, K) logits, in float64."""
    n = len(logits)
    if n < splits:
        raise GankitError(f"the Inception Score needs at least {splits} samples for its {splits} splits, not {n}.")
    log_p = torch.log_softmax(logits.double(), dim=1)  # (N, K) log p(y|x)
    scores = []
    for i in range(splits):
        chunk = log_p[i * n // splits:(i + 1) * n // splits]
        log_marginal = torch.logsumexp(chunk, 0) - np.log(len(chunk))  # log p(y) over the chunk
        kl = (chunk.exp() * (chunk - log_marginal)).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScore(Metric):
    min_samples = SPLITS  # one sample per split at least

    def __init__(self, backbone: str, scalar: str):
        self.backbone, self.headline = backbone, scalar
        self.lower_is_better = {scalar: False, f"{scalar}_std": True}

    def __call__(self, ev) -> dict[str, float]:
        ev.require_images(self.headline)
        mean, std = inception_score(ev.fake_features(self.backbone)["logits"])
        return {self.headline: mean, f"{self.headline}_std": std}

    def details(self, ev) -> dict:
        return {"splits": SPLITS}


@register_metric("is")
def build_is() -> Metric:
    return InceptionScore("inception", "is")


@register_metric("cis")
def build_classifier_is() -> Metric:
    return InceptionScore("classifier", "cis")
