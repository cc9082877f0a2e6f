"""Conditional GAN (Mirza & Osindero 2014, "Conditional generative adversarial nets").

Both networks see the label: G gets a learned label embedding concatenated to z, and D gets
one to its input (as extra constant feature maps for images, extra features for points).
The backbones are DCGAN's convolutional nets for images (the paper's MLPs predate DCGAN) and
the MLPs for 2-D points.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.nets import Nets, register_conditional, register_model, require_classes
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nets.mlp import MLPDiscriminator, MLPGenerator


class LabelConditionedGenerator(nn.Module):
    """G(z, y) = backbone([z, embed(y)]); ACGAN's generator is the same network."""

    def __init__(self, z_dim: int, num_classes: int, embed_dim: int, backbone_builder):
        super().__init__()
        self.z_dim = z_dim
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.backbone = backbone_builder(z_dim + embed_dim)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("a conditional generator needs labels")
        return self.backbone(torch.cat([z, self.embed(labels)], dim=1))


class LabelConditionedDiscriminator(nn.Module):
    """D(x, y) = backbone([x, embed(y)]), the embedding broadcast over the image plane."""

    def __init__(self, data_shape: tuple[int, ...], num_classes: int, embed_dim: int, backbone_builder):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.backbone = backbone_builder(embed_dim)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("a conditional discriminator needs labels")
        e = self.embed(labels)  # (B, E)
        if x.dim() == 4:
            e = e[:, :, None, None].expand(-1, -1, *x.shape[2:])  # (B, E, H, W)
        else:
            x = x.flatten(1)
        return self.backbone(torch.cat([x, e], dim=1))


def conditional_pair(cfg, data_shape: tuple[int, ...], num_classes: int) -> tuple[nn.Module, nn.Module]:
    embed = num_classes  # as wide as a one-hot code, but learned
    if len(data_shape) == 3:
        channels, resolution, _ = data_shape
        bn_g, bn_d = cfg.batchnorm_G is not False, cfg.batchnorm_D is not False
        G = LabelConditionedGenerator(cfg.z_dim, num_classes, embed, lambda d: DCGANGenerator(
            d, channels, resolution, cfg.width, bn_g))
        D = LabelConditionedDiscriminator(data_shape, num_classes, embed, lambda e: DCGANDiscriminator(
            channels + e, resolution, cfg.width, bn_d))
    else:
        G = LabelConditionedGenerator(cfg.z_dim, num_classes, embed, lambda d: MLPGenerator(
            d, data_shape, cfg.width, cfg.depth, bool(cfg.batchnorm_G)))
        D = LabelConditionedDiscriminator(data_shape, num_classes, embed, lambda e: MLPDiscriminator(
            (math.prod(data_shape) + e,), cfg.width, cfg.depth, bool(cfg.batchnorm_D)))
    return G, D


@register_conditional
@register_model("cgan")
def build_cgan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_classes("cgan", num_classes)
    G, D = conditional_pair(cfg, data_shape, num_classes)
    return Nets(G=G, D=D)
