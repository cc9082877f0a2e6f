"""Non-saturating GAN loss (Goodfellow et al. 2014, sec. 3).

D minimises binary cross-entropy: -log D(x) - log(1 - D(G(z))).
G maximises log D(G(z)) instead of minimising log(1 - D(G(z))): the same fixed point, but strong
gradients early in training, when D rejects every fake.
softplus(-l) = -log sigmoid(l) keeps both terms stable for large logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.losses import LogitLoss, register_loss


class NonSaturatingLoss(LogitLoss):
    def d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_terms(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()


@register_loss("nonsaturating")
def build_nonsaturating(cfg) -> NonSaturatingLoss:
    return NonSaturatingLoss()
