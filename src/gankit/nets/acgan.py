"""Auxiliary-classifier GAN (Odena, Olah & Shlens 2017, "Conditional image synthesis with
auxiliary classifier GANs").

G is conditioned on the label as in CGAN; D is not. Instead D has a second head that predicts
the class of real and fake images, and both networks also minimise that classifier's
cross-entropy (the `acgan` loss). The head is a submodule of D, so it shares D's optimizer and
checkpoint entry.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.nets import Nets, register_conditional, register_model, require_classes, require_images
from gankit.nets.cgan import LabelConditionedGenerator
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator


class ACGANDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int, num_classes: int, batchnorm: bool):
        super().__init__()
        self.trunk = DCGANDiscriminator(channels, resolution, width, batchnorm)
        ch, base, _ = self.trunk.features_shape
        self.classifier = nn.Conv2d(ch, num_classes, base, 1, 0)  # (B, K, 1, 1)
        nn.init.normal_(self.classifier.weight, 0.0, 0.02)

    def logits_and_classes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """((B,) real/fake logits, (B, K) class logits) from one pass through the trunk."""
        h = self.trunk.features(x)
        return self.trunk.head(h).flatten(), self.classifier(h).flatten(1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.trunk(x)  # (B,) logits; D does not see the label


@register_conditional
@register_model("acgan")
def build_acgan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_images("acgan", data_shape)
    require_classes("acgan", num_classes)
    channels, resolution, _ = data_shape
    G = LabelConditionedGenerator(cfg.z_dim, num_classes, num_classes, lambda d: DCGANGenerator(
        d, channels, resolution, cfg.width, cfg.batchnorm_G is not False))
    return Nets(G=G, D=ACGANDiscriminator(channels, resolution, cfg.width, num_classes,
                                          cfg.batchnorm_D is not False))
