"""DCGAN as laid out in Taehoon Kim's DCGAN-tensorflow, the code behind many papers' DCGAN rows,
among them the Stacked MNIST experiments of PacGAN (Lin et al. 2018, its VEEGAN setup).

It differs from gankit's `dcgan` (the PyTorch-example layout) in ways that change capacity:
- 5 x 5 kernels with TensorFlow's 'SAME' padding, so every stride-2 layer maps side n to
  ceil(n / 2): 28 -> 14 -> 7 -> 4 -> 2;
- always four stride-2 stages, at any resolution: D widens to 8 x width (512 at width 64) and
  ends in a linear layer; G starts from a linear projection of z to (8 x width, s, s);
- conv biases everywhere, as in that code (BatchNorm makes most of them redundant).

At 28 px both networks are about 5 times the multiply-adds per image of gankit's `dcgan` at the
same width, which is why the Stacked MNIST presets keep `dcgan` (README, "Stacked MNIST").
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.nets import Nets, register_model, require_images
from gankit.nets.layers import batchnorm2d, dcgan_init

STAGES = 4


def _sides(resolution: int) -> list[int]:
    """Feature-map sides from the image down, each the ceiling of half the one before."""
    sides = [resolution]
    for _ in range(STAGES):
        sides.append(-(-sides[-1] // 2))
    return sides  # 28 px: [28, 14, 7, 4, 2]


def _up(c_in: int, c_out: int, side_in: int, side_out: int) -> nn.ConvTranspose2d:
    # A 5 x 5, stride-2 transposed conv with padding 2 gives 2 * side_in - 1 + output_padding,
    # so output_padding picks the odd (7 from 4) or even (14 from 7) side.
    return nn.ConvTranspose2d(c_in, c_out, 5, 2, 2, output_padding=side_out - 2 * side_in + 1)


class DCGANTFGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, resolution: int, width: int, batchnorm: bool = True):
        super().__init__()
        sides = _sides(resolution)[::-1]  # from the smallest side up
        self.z_dim, self.start = z_dim, (width * 2 ** (STAGES - 1), sides[0], sides[0])
        self.project = nn.Linear(z_dim, width * 2 ** (STAGES - 1) * sides[0] ** 2)
        layers: list[nn.Module] = [batchnorm2d(self.start[0], batchnorm), nn.ReLU(True)]
        ch = self.start[0]
        for side_in, side_out in zip(sides[:-2], sides[1:-1], strict=True):
            layers += [_up(ch, ch // 2, side_in, side_out), batchnorm2d(ch // 2, batchnorm), nn.ReLU(True)]
            ch //= 2
        layers += [_up(ch, channels, sides[-2], sides[-1]), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.project(z).view(-1, *self.start))  # (B, C, H, W) in [-1, 1]


class DCGANTFDiscriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int, batchnorm: bool = True):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 5, 2, 2), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(STAGES - 1):
            layers += [nn.Conv2d(ch, ch * 2, 5, 2, 2), batchnorm2d(ch * 2, batchnorm), nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(ch * _sides(resolution)[-1] ** 2, 1)
        dcgan_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x)).flatten()  # (B,) logits


@register_model("dcgan-tf")
def build_dcgan_tf(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_images("dcgan-tf", data_shape)
    channels, resolution, _ = data_shape
    return Nets(
        G=DCGANTFGenerator(cfg.z_dim, channels, resolution, cfg.width, cfg.batchnorm_G is not False),
        D=DCGANTFDiscriminator(channels, resolution, cfg.width_D or cfg.width, cfg.batchnorm_D is not False),
    )
