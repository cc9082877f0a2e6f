"""WGAN-div penalty (Wu et al. 2018, "Wasserstein divergence for GANs", eq. 10):
k * E[|grad D(u)|^p] with k = 2, p = 6.

Unlike WGAN-GP it pulls the gradient norm towards 0, not 1, and needs no interpolates: the
paper reports its best results sampling u from the real and the fake distributions, so the
term is averaged over both (k/2 each). `loss.div_k` is the weight, `loss.div_p` the power.
"""

from __future__ import annotations

import torch

from gankit.penalties import Penalty, input_gradient, register_penalty


class DivergencePenalty(Penalty):
    name = "div"

    def __init__(self, weight: float, power: float):
        super().__init__(weight)
        self.power = power

    def compute(self, nets, batch) -> torch.Tensor:
        terms = [input_gradient(nets, x, batch.labels, self.grad_scaler).norm(2, dim=1) ** self.power
                 for x in (batch.real, batch.fake)]
        return 0.5 * (terms[0].mean() + terms[1].mean())


@register_penalty("div")
def build_div(cfg) -> DivergencePenalty:
    return DivergencePenalty(cfg.div_k, cfg.div_p)
