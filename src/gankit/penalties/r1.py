"""R1 penalty (Mescheder, Geiger & Nowozin 2018, "Which training methods for GANs do actually
converge?", eq. 9): gamma/2 * E[|grad D(x)|^2] on real data only.

Applied lazily, every `loss.r1_every` D steps and multiplied by that interval so its average
strength is unchanged (Karras et al. 2020, StyleGAN2, sec. 3.1): most steps skip the costly
double backward.
"""

from __future__ import annotations

import torch

from gankit.penalties import Penalty, input_gradient, register_penalty


class R1Penalty(Penalty):
    name = "r1"

    def compute(self, nets, batch) -> torch.Tensor:
        return (input_gradient(nets, batch.real, batch.labels, self.grad_scaler) ** 2).sum(1).mean()


@register_penalty("r1")
def build_r1(cfg) -> R1Penalty:
    return R1Penalty(cfg.r1_gamma / 2 * cfg.r1_every, every=cfg.r1_every)
