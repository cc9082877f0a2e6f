"""The loss registry: one small object per GAN formulation.

The loop hands a loss the networks and a `Batch`; the loss returns named terms,
`{"D/adv": tensor}` in the D phase and `{"G/adv": tensor}` in the G phase. The loop sums the
terms, backpropagates, and logs each by name. Penalties (gradient penalty, R1, ...) are separate
objects with their own weight and interval, so no formulation carries an `if` for them.
A loss that needs more than D's logits (ACGAN's classifier, VEEGAN's reconstructor, CycleGAN's
cycle term) overrides `discriminator`/`generator` and reads what it needs from `nets`/`batch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankit.nets import Nets
from gankit.registry import Registry

Terms = dict[str, torch.Tensor]


@dataclass
class Batch:
    """What one phase of one step works on. Images arrive already augmented."""

    real: torch.Tensor  # (B, *data_shape)
    fake: torch.Tensor  # (B, *data_shape); detached from G in the D phase
    z: torch.Tensor  # (B, z_dim), the noise that made `fake`
    labels: torch.Tensor | None  # (B,) class labels shared by real and fake, or None


class LogitLoss:
    """A formulation that needs only D's logits on real and fake batches.

    Subclasses define `d_terms(real_logits, fake_logits)` and `g_terms(fake_logits)`, each a
    scalar tensor; most GAN losses (minimax, non-saturating, LSGAN, hinge, Wasserstein) fit.
    """

    def d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_terms(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        real_logits = nets.D(batch.real, batch.labels)
        fake_logits = nets.D(batch.fake, batch.labels)
        return {"D/adv": self.d_terms(real_logits, fake_logits)}

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        return {"G/adv": self.g_terms(nets.D(batch.fake, batch.labels))}

    def after_discriminator_step(self, nets: Nets) -> None:
        """Called after each D optimizer step; WGAN's weight clipping lives here."""


LOSSES: Registry = Registry("loss")
register_loss = LOSSES.register
get_loss = LOSSES.get
list_losses = LOSSES.list


def build_loss(cfg) -> LogitLoss:
    return LOSSES.build(cfg.name, cfg)


from gankit.losses import acgan, hinge, lsgan, minimax, nonsaturating, veegan, wasserstein  # noqa: E402,F401
