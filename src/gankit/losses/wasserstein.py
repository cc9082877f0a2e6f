"""Wasserstein GAN (Arjovsky, Chintala & Bottou 2017, algorithm 1).

The critic D maximises E[D(x)] - E[D(G(z))], an estimate of the Earth-Mover distance when D is
1-Lipschitz; G minimises -E[D(G(z))]. The paper enforces the Lipschitz bound crudely, by
clipping every critic weight to [-c, c] after each update (c = 0.01, `loss.clip`), and pairs
it with RMSProp at lr 5e-5 and 5 critic steps per G step (the `wgan-*` presets).
WGAN-GP and WGAN-div use this same loss with `loss.clip=0` and a penalty object instead.
"""

from __future__ import annotations

import torch

from gankit.losses import LogitLoss, register_loss
from gankit.nets import Nets


class WassersteinLoss(LogitLoss):
    def __init__(self, clip: float):
        self.clip = clip

    def d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_terms(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    @torch.no_grad()
    def after_discriminator_step(self, nets: Nets) -> None:
        if self.clip > 0:  # 0 = the unclipped critic of WGAN-GP / WGAN-div
            for p in nets.D.parameters():
                p.clamp_(-self.clip, self.clip)


@register_loss("wasserstein")
def build_wasserstein(cfg) -> WassersteinLoss:
    return WassersteinLoss(cfg.clip)
