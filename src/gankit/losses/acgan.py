"""ACGAN loss (Odena, Olah & Shlens 2017, sec. 3).

D maximises L_S + L_C and G maximises L_C - L_S, where L_S is the log-likelihood of the right
source (real/fake) and L_C that of the right class. L_S is taken in its non-saturating form
for G, as in the authors' code; `loss.aux_weight` scales L_C. The class term on fakes trains
G to make images its label names; on reals it trains D's classifier head.
"""

from __future__ import annotations

import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.losses import Batch, Terms, register_loss
from gankit.losses.nonsaturating import NonSaturatingLoss
from gankit.nets import Nets


class ACGANLoss(NonSaturatingLoss):
    def __init__(self, aux_weight: float):
        self.aux_weight = aux_weight

    @staticmethod
    def _check(nets: Nets, batch: Batch) -> None:
        if not hasattr(nets.D, "logits_and_classes") or batch.labels is None:
            raise GankitError("loss acgan needs a D with a classifier head and labelled data; "
                              "use model.name=acgan with a labelled dataset.")

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        self._check(nets, batch)
        real_logits, real_classes = nets.D.logits_and_classes(batch.real)  # (B,), (B, K)
        fake_logits, fake_classes = nets.D.logits_and_classes(batch.fake)
        aux = F.cross_entropy(real_classes, batch.labels) + F.cross_entropy(fake_classes, batch.labels)
        return {"D/adv": self.d_terms(real_logits, fake_logits), "D/aux": self.aux_weight * aux}

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        self._check(nets, batch)
        fake_logits, fake_classes = nets.D.logits_and_classes(batch.fake)
        return {"G/adv": self.g_terms(fake_logits),
                "G/aux": self.aux_weight * F.cross_entropy(fake_classes, batch.labels)}


@register_loss("acgan")
def build_acgan(cfg) -> ACGANLoss:
    return ACGANLoss(cfg.aux_weight)
