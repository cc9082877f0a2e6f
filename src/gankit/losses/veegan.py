"""VEEGAN objective (Srivastava et al. 2017, algorithm 1).

D is a logistic classifier of (z, x) pairs: generated pairs (z, G(z)) against encoded ones
(z ~ p(z|x), x). Its logit estimates the log density ratio in the paper's variational bound, so
G minimises E[D(z, G(z))] plus the reconstruction cost -log p(z | G(z)), and the reconstructor
F (a submodule of G, so updated with it) minimises the same reconstruction cost. F's code for a
real point is detached in D's phase: F learns only from reconstruction, as in the algorithm.

The reconstructor is a Gaussian, p(z|x) = N(F(x), s^2 I) with s = `loss.recon_std` (1 in the
authors' code, VEEGAN_2D_RING.ipynb, where it is a StochasticTensor Normal(F(x), 1)). Two things
follow, and gankit got both wrong before: the reconstruction cost is the Gaussian negative
log-likelihood |z - F(G(z))|^2 / (2 s^2), and D sees *sampled* codes F(x) + s*eps for real points.
With deterministic codes the encoded pairs lie on a 2-D sheet in (z, x) space while generated
pairs fill all of z: D separates them perfectly, its logit grows without bound, the KL term of
the bound is infinite, and G follows a meaningless gradient (issue 10 measured 2-4 of 8 ring modes and
under 1% high-quality samples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.losses import Batch, LogitLoss, Terms, register_loss
from gankit.nets import Nets


class VEEGANLoss(LogitLoss):
    def __init__(self, recon_weight: float, recon_std: float):
        self.recon_weight, self.recon_std = recon_weight, recon_std

    @staticmethod
    def _check(nets: Nets) -> None:
        if not (hasattr(nets.G, "reconstruct") and getattr(nets.D, "needs_z", False)):
            raise GankitError("loss veegan needs a reconstructor in G and a D of (x, z) pairs; "
                              "use model.name=veegan.")

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        self._check(nets)
        code = nets.G.reconstruct(batch.real).detach()
        code = code + self.recon_std * torch.randn_like(code)  # a draw from p(z | x) = N(F(x), s^2 I)
        encoded = nets.D(batch.real, batch.labels, code)
        generated = nets.D(batch.fake, batch.labels, batch.z)
        # Generated pairs are the positive class of the paper's classifier.
        return {"D/adv": F.softplus(-generated).mean() + F.softplus(encoded).mean()}

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        self._check(nets)
        # -log N(z; F(G(z)), s^2 I) up to a constant
        recon = ((batch.z - nets.G.reconstruct(batch.fake)) ** 2).sum(1).mean() / (2 * self.recon_std**2)
        return {"G/adv": nets.D(batch.fake, batch.labels, batch.z).mean(),
                "G/recon": self.recon_weight * recon}


@register_loss("veegan")
def build_veegan(cfg) -> VEEGANLoss:
    return VEEGANLoss(cfg.recon_weight, cfg.recon_std)
