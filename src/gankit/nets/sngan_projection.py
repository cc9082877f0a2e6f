"""SNGAN-projection (Miyato & Koyama 2018, "cGANs with projection discriminator").

D scores a labelled image as psi(phi(x)) + <embed(y), phi(x)>: the class enters as an inner
product with D's pooled features instead of being concatenated to the input, which the paper
derives from the log-likelihood ratio of a class-conditional model. G is SNGAN's ResNet with
conditional BatchNorm (a per-class scale and shift in every block). D's embedding is spectrally
normalised too when `model.spectral_norm_D` is on, as in the authors' code.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.nets import Nets, register_conditional, register_model, require_classes, require_images
from gankit.nets.resnet import ResNetDiscriminator, ResNetGenerator


class ProjectionDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int, num_classes: int):
        super().__init__()
        self.trunk = ResNetDiscriminator(channels, resolution, width)
        self.embed = nn.Embedding(num_classes, self.trunk.feature_dim)
        nn.init.orthogonal_(self.embed.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("the projection discriminator needs labels")
        h = self.trunk.features(x)  # (B, ch)
        return self.trunk.linear(h).squeeze(1) + (self.embed(labels) * h).sum(1)  # (B,) logits


@register_conditional
@register_model("sngan-projection")
def build_sngan_projection(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_images("sngan-projection", data_shape, (32, 64))
    require_classes("sngan-projection", num_classes)
    channels, resolution, _ = data_shape
    return Nets(
        G=ResNetGenerator(cfg.z_dim, channels, resolution, cfg.width, num_classes,
                          batchnorm=cfg.batchnorm_G is not False),
        D=ProjectionDiscriminator(channels, resolution, cfg.width, num_classes),
    )
