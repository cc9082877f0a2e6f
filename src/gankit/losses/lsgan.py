"""Least-squares GAN (Mao et al. 2017, "Least squares generative adversarial networks", eq. 2).

With the 0-1 coding (a = 0 for fake, b = 1 for real, c = 1 as G's target), D minimises
1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2 and G minimises 1/2 (D(G(z)) - 1)^2. Fakes on the correct
side of the boundary but far from the data are still penalised, which keeps gradients alive.
"""

from __future__ import annotations

import torch

from gankit.losses import LogitLoss, register_loss


class LeastSquaresLoss(LogitLoss):
    def d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits**2).mean()

    def g_terms(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_logits - 1) ** 2).mean()


@register_loss("lsgan")
def build_lsgan(cfg) -> LeastSquaresLoss:
    return LeastSquaresLoss()
