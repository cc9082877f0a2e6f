"""The loss registry: one small object per GAN formulation.

A loss turns the networks and a batch into named terms, `{"D/adv": tensor}` for the D phase and
`{"G/adv": tensor}` for the G phase; the loop sums the terms, backpropagates, and logs each by
name. Penalties (gradient penalty, R1, ...) are separate objects with their own weight and
interval, so no formulation carries an `if` for them.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.registry import Registry

Terms = dict[str, torch.Tensor]


class LogitLoss:
    """A formulation that needs only D's logits on real and fake batches.

    Subclasses define `d_terms(real_logits, fake_logits)` and `g_terms(fake_logits)`, each a
    scalar tensor; most GAN losses (minimax, non-saturating, LSGAN, hinge, Wasserstein) fit.
    """

    def d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_terms(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def discriminator(self, D: nn.Module, real, fake, labels) -> Terms:
        return {"D/adv": self.d_terms(D(real, labels), D(fake, labels))}

    def generator(self, D: nn.Module, fake, labels) -> Terms:
        return {"G/adv": self.g_terms(D(fake, labels))}


LOSSES: Registry = Registry("loss")
register_loss = LOSSES.register
get_loss = LOSSES.get
list_losses = LOSSES.list


def build_loss(cfg) -> LogitLoss:
    return LOSSES.build(cfg.name, cfg)


from gankit.losses import nonsaturating  # noqa: E402,F401
