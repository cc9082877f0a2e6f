"""VEEGAN objective (Srivastava et al. 2017, algorithm 1).

D is a logistic classifier of (z, x) pairs: generated pairs (z, G(z)) against encoded ones
(F(x), x). Its logit estimates the log density ratio in the paper's variational bound, so G
minimises E[D(z, G(z))] plus the reconstruction cost E|z - F(G(z))|^2, and the reconstructor F
(a submodule of G, so updated with it) minimises the same reconstruction cost. F's code for a
real point is detached in D's phase: F learns only from reconstruction, as in the algorithm.
"""

from __future__ import annotations

import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.losses import Batch, LogitLoss, Terms, register_loss
from gankit.nets import Nets


class VEEGANLoss(LogitLoss):
    def __init__(self, recon_weight: float):
        self.recon_weight = recon_weight

    @staticmethod
    def _check(nets: Nets) -> None:
        if not (hasattr(nets.G, "reconstruct") and getattr(nets.D, "needs_z", False)):
            raise GankitError("loss veegan needs a reconstructor in G and a D of (x, z) pairs; "
                              "use model.name=veegan.")

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        self._check(nets)
        encoded = nets.D(batch.real, batch.labels, nets.G.reconstruct(batch.real).detach())
        generated = nets.D(batch.fake, batch.labels, batch.z)
        # Generated pairs are the positive class of the paper's classifier.
        return {"D/adv": F.softplus(-generated).mean() + F.softplus(encoded).mean()}

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        self._check(nets)
        recon = ((batch.z - nets.G.reconstruct(batch.fake)) ** 2).sum(1).mean()
        return {"G/adv": nets.D(batch.fake, batch.labels, batch.z).mean(),
                "G/recon": self.recon_weight * recon}


@register_loss("veegan")
def build_veegan(cfg) -> VEEGANLoss:
    return VEEGANLoss(cfg.recon_weight)
