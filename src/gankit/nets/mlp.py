"""Fully connected G and D, for 2-D mixtures (and flattened images, as in the vanilla GAN).

Goodfellow et al. 2014 used MLPs; the mode-collapse studies (Metz 2017 unrolled GAN, VEEGAN,
PacGAN) use small ReLU MLPs like these on the ring and grid mixtures. BatchNorm is off by
default (those papers use none) and can be switched on per network.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.nets import Nets, register_model


def _stack(dim_in: int, width: int, depth: int, act: type[nn.Module], batchnorm: bool = False,
           **act_kwargs) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(dim_in if i == 0 else width, width))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(act(**act_kwargs))
    return layers


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, data_shape: tuple[int, ...], width: int, depth: int, batchnorm: bool = False):
        super().__init__()
        self.z_dim, self.data_shape = z_dim, data_shape
        out_dim = math.prod(data_shape)
        head: list[nn.Module] = [nn.Linear(width, out_dim)]
        if len(data_shape) == 3:  # images live in [-1, 1]; points are unbounded
            head.append(nn.Tanh())
        self.net = nn.Sequential(*_stack(z_dim, width, depth, nn.ReLU, batchnorm), *head)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.data_shape)  # (B, *data_shape)


class MLPDiscriminator(nn.Module):
    """`input_scale` multiplies the input. With Adam each weight moves about lr per step, so a D
    whose first-layer weights start near 1 needs ~1/(lr * sigma) steps before it can tell apart
    points sigma apart (sigma = 0.01 on the ring: ~1e5 steps at lr 1e-3, PacGAN's 400 epochs).
    Scaling the input by s makes the same resolution reachable s times sooner."""

    def __init__(self, data_shape: tuple[int, ...], width: int, depth: int, batchnorm: bool = False,
                 input_scale: float = 1.0):
        super().__init__()
        self.input_scale = input_scale
        self.net = nn.Sequential(
            nn.Flatten(),
            *_stack(math.prod(data_shape), width, depth, nn.LeakyReLU, batchnorm, negative_slope=0.2),
            nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x * self.input_scale).squeeze(1)  # (B,) logits


@register_model("mlp")
def build_mlp(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    return Nets(
        G=MLPGenerator(cfg.z_dim, data_shape, cfg.width, cfg.depth, bool(cfg.batchnorm_G)),
        D=MLPDiscriminator(data_shape, cfg.width, cfg.depth, bool(cfg.batchnorm_D), cfg.input_scale_D),
    )
