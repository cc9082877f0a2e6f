"""PacGAN (Lin, Khetan, Fanti & Oh 2018, "PacGAN: the power of two samples in generative
adversarial networks").

D judges packs of `model.pack` samples at once, all real or all fake, concatenated along the
feature (points) or channel (images) axis. A pack from a mode-collapsed G has tell-tale
duplicates, so D penalises collapse. Only D changes: G is the MLP (points) or DCGAN (images).
D returns one logit per pack, (B / pack,), and the losses average over whatever they get.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.nets import Nets, register_model
from gankit.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gankit.nets.dcgan_tf import DCGANTFDiscriminator, DCGANTFGenerator
from gankit.nets.layers import pack
from gankit.nets.mlp import MLPDiscriminator, MLPGenerator


class PackedDiscriminator(nn.Module):
    def __init__(self, inner: nn.Module, m: int):
        super().__init__()
        self.inner, self.m = inner, m

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(pack(x, self.m))  # (B / m,) logits


# The conv nets of a PacGAN on images (`model.pack_inner`): gankit's DCGAN, or DCGAN-tensorflow's
# layout, which the authors' Stacked MNIST code packs.
IMAGE_NETS = {"dcgan": (DCGANGenerator, DCGANDiscriminator), "dcgan-tf": (DCGANTFGenerator, DCGANTFDiscriminator)}


@register_model("pacgan")
def build_pacgan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    m = cfg.pack
    if len(data_shape) == 3:
        channels, resolution, _ = data_shape
        make_G, make_D = IMAGE_NETS[cfg.pack_inner]
        G: nn.Module = make_G(cfg.z_dim, channels, resolution, cfg.width, cfg.batchnorm_G is not False)
        inner: nn.Module = make_D(m * channels, resolution, cfg.width, cfg.batchnorm_D is not False)
    else:
        G = MLPGenerator(cfg.z_dim, data_shape, cfg.width, cfg.depth, bool(cfg.batchnorm_G))
        inner = MLPDiscriminator((m * math.prod(data_shape),), cfg.width, cfg.depth, bool(cfg.batchnorm_D),
                                 cfg.input_scale_D)
    return Nets(G=G, D=PackedDiscriminator(inner, m))
