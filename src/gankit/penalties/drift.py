"""Drift penalty (Karras et al. 2018, PGGAN, appendix A.1): epsilon_drift * E[D(x)^2] on real data,
epsilon_drift = 0.001.

A WGAN critic's output is defined only up to a constant, so it can drift far from zero while the
gradient penalty holds; this small pull keeps it near zero (the authors add it to WGAN-GP's loss).
"""

from __future__ import annotations

import torch

from gankit.penalties import Penalty, register_penalty


class DriftPenalty(Penalty):
    name = "drift"

    def compute(self, nets, batch) -> torch.Tensor:
        return (nets.D(batch.real, batch.labels) ** 2).mean()


@register_penalty("drift")
def build_drift(cfg) -> DriftPenalty:
    return DriftPenalty(cfg.drift_weight)
