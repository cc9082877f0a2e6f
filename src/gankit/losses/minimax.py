"""Minimax (saturating) GAN loss (Goodfellow et al. 2014, eq. 1).

D minimises -log D(x) - log(1 - D(G(z))), and G minimises log(1 - D(G(z))) exactly as in the
two-player game, rather than the non-saturating substitute. Its gradient vanishes when D
confidently rejects fakes, which is why the paper itself recommends the other form; it is
here so the two can be compared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.losses import LogitLoss, register_loss


class MinimaxLoss(LogitLoss):
    def d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_terms(self, fake_logits: torch.Tensor) -> torch.Tensor:
        # log(1 - sigmoid(l)) = -softplus(l)
        return -F.softplus(fake_logits).mean()


@register_loss("minimax")
def build_minimax(cfg) -> MinimaxLoss:
    return MinimaxLoss()
