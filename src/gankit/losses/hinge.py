"""Hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, eq. 16; used by SAGAN).

D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]: samples already beyond the margin
contribute nothing. G minimises -E[D(G(z))].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.losses import LogitLoss, register_loss


class HingeLoss(LogitLoss):
    def d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_terms(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


@register_loss("hinge")
def build_hinge(cfg) -> HingeLoss:
    return HingeLoss()
