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

from gankit.errors import GankitError
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


class SplitLoss(LogitLoss):
    """D trained by one formulation and G by another (seed 001's `-cd=hinge -cg=bce`).

    Each side keeps its own terms, so the pairs are the published ones: hinge for D with the
    non-saturating G loss, say, as in several SNGAN/BigGAN ablations. D's formulation also
    owns what happens after D's step (WGAN's clipping). Only formulations that read D's logits
    alone can be paired; ACGAN and VEEGAN train extra networks on both sides.
    """

    def __init__(self, d_loss: LogitLoss, g_loss: LogitLoss):
        self.d_loss, self.g_loss = d_loss, g_loss

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        return self.d_loss.discriminator(nets, batch)

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        return self.g_loss.generator(nets, batch)

    def after_discriminator_step(self, nets: Nets) -> None:
        self.d_loss.after_discriminator_step(nets)


def build_loss(cfg) -> LogitLoss:
    d_loss = LOSSES.build(cfg.name, cfg)
    if not cfg.generator or cfg.generator == cfg.name:
        return d_loss
    g_loss = LOSSES.build(cfg.generator, cfg)
    for name, loss in ((cfg.name, d_loss), (cfg.generator, g_loss)):
        # A pairable loss is a plain LogitLoss: its D phase reads only D's logits on real and fake.
        if type(loss).discriminator is not LogitLoss.discriminator or type(loss).generator is not LogitLoss.generator:
            raise GankitError(f"loss {name} trains its own extra network, so it cannot be paired with another "
                              f"for G and D; drop loss.generator (-cg) or use minimax, nonsaturating, lsgan, "
                              "hinge or wasserstein on both sides.")
    return SplitLoss(d_loss, g_loss)


from gankit.losses import acgan, hinge, lsgan, minimax, nonsaturating, veegan, wasserstein  # noqa: E402,F401
