"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised representation learning with deep
convolutional GANs"), following the paper's architecture guidelines:

- no pooling: G upsamples with fractionally strided convolutions, D downsamples with strided ones;
- BatchNorm in G and D, except G's output layer and D's input layer (switchable: WGAN-GP's
  critic must not have it, since its per-sample penalty assumes samples are scored independently);
- no fully connected hidden layers;
- ReLU in G with Tanh at the output, LeakyReLU (slope 0.2) in D;
- weights initialised from N(0, 0.02).

Works at 28 px (7 -> 14 -> 28, as for MNIST) and at powers of two from 32 px (4 -> 8 -> ...).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nets import Nets, register_model, require_images
from gankit.nets.layers import batchnorm2d, dcgan_init


def _plan(resolution: int) -> tuple[int, int]:
    """(base side, number of 2x stages) such that base * 2**stages == resolution."""
    for base in (4, 7):
        stages = round(math.log2(resolution / base))
        if stages >= 2 and base * 2**stages == resolution:
            return base, stages
    raise GankitError(
        f"DCGAN supports 28 px or powers of two from 32 px, not {resolution}; set data.resolution."
    )


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, resolution: int, width: int, batchnorm: bool = True):
        super().__init__()
        base, stages = _plan(resolution)
        self.z_dim = z_dim
        ch = width * 2 ** (stages - 1)  # widest at the lowest resolution
        # A transposed conv with kernel = base turns the (z, 1, 1) input into (ch, base, base):
        # the "project and reshape" of the paper, without a hidden fully connected layer.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, base, 1, 0, bias=not batchnorm),
            batchnorm2d(ch, batchnorm),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batchnorm),
                batchnorm2d(ch // 2, batchnorm),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z[:, :, None, None])  # (B, C, H, W) in [-1, 1]


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int, batchnorm: bool = True, outputs: int = 1):
        super().__init__()
        base, stages = _plan(resolution)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(stages - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not batchnorm),
                batchnorm2d(ch * 2, batchnorm),
                nn.LeakyReLU(0.2, True),
            ]
            ch *= 2
        self.features = nn.Sequential(*layers)  # (B, ch, base, base); ACGAN puts a second head on it
        self.features_shape = (ch, base, base)
        self.head = nn.Conv2d(ch, outputs, base, 1, 0)  # (B, outputs, 1, 1): one logit per image
        dcgan_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x)).flatten()  # (B,) logits


@register_model("dcgan")
def build_dcgan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_images("dcgan", data_shape)
    channels, resolution, _ = data_shape
    return Nets(
        G=DCGANGenerator(cfg.z_dim, channels, resolution, cfg.width, cfg.batchnorm_G is not False),
        D=DCGANDiscriminator(channels, resolution, cfg.width_D or cfg.width, cfg.batchnorm_D is not False),
    )
