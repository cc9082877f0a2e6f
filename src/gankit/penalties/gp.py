"""WGAN-GP gradient penalty (Gulrajani et al. 2017, "Improved training of Wasserstein GANs",
algorithm 1): lambda * E[(|grad D(x_hat)|_2 - 1)^2], with x_hat = eps * x + (1 - eps) * G(z)
and one eps ~ U[0, 1] per sample.

The norm is taken per sample (over all of a sample's pixels), which is what makes it a bound on
D's slope along each real-fake line; a norm over the whole batch would not be. lambda = 10.
"""

from __future__ import annotations

import torch

from gankit.penalties import Penalty, input_gradient, register_penalty
from gankit.ranks import draw_share


class GradientPenalty(Penalty):
    name = "gp"

    def compute(self, nets, batch) -> torch.Tensor:
        real, fake = batch.real.detach(), batch.fake.detach()
        # Global RNG (saved in checkpoints): one interpolation coefficient per sample.
        eps = draw_share(lambda n: torch.rand(n, *([1] * (real.dim() - 1)), device=real.device), real.shape[0])
        x_hat = eps * real.float() + (1 - eps) * fake.float()
        norms = input_gradient(nets, x_hat, batch.labels, self.grad_scaler).norm(2, dim=1)  # (B,)
        return ((norms - 1) ** 2).mean()


@register_penalty("gp")
def build_gp(cfg) -> GradientPenalty:
    return GradientPenalty(cfg.gp_weight)
