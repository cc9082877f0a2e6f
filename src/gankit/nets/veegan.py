"""VEEGAN (Srivastava, Valkov, Russell, Gutmann & Sutton 2017, "VEEGAN: reducing mode collapse
in GANs using implicit variational learning").

A reconstructor F maps data back to noise. D sees (z, x) pairs and tells generated pairs
(z, G(z)) from encoded ones (F(x), x); G and F also minimise |z - F(G(z))|^2. If G drops a mode,
F maps that mode's real points to codes that G never turns into them, and D learns to spot
it. F is trained with G, so it is a submodule of G (`G.reconstructor`): same optimizer, same
checkpoint entry, same EMA. MLPs throughout, as in the paper's mixture experiments.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nets import Nets, register_model
from gankit.nets.mlp import MLPGenerator, _stack


class VEEGANGenerator(nn.Module):
    def __init__(self, z_dim: int, data_shape: tuple[int, ...], width: int, depth: int):
        super().__init__()
        self.z_dim = z_dim
        self.generator = MLPGenerator(z_dim, data_shape, width, depth)
        self.reconstructor = nn.Sequential(nn.Flatten(), *_stack(math.prod(data_shape), width, depth, nn.ReLU),
                                           nn.Linear(width, z_dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z)  # (B, *data_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstructor(x)  # (B, z_dim)


class JointDiscriminator(nn.Module):
    needs_z = True  # called as D(x, labels, z); see gankit.nets

    def __init__(self, z_dim: int, data_shape: tuple[int, ...], width: int, depth: int):
        super().__init__()
        self.net = nn.Sequential(*_stack(math.prod(data_shape) + z_dim, width, depth, nn.LeakyReLU,
                                         negative_slope=0.2), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            raise GankitError("model veegan's D scores (x, z) pairs, so it needs loss.name=veegan.")
        return self.net(torch.cat([x.flatten(1), z], dim=1)).squeeze(1)  # (B,) logits


@register_model("veegan")
def build_veegan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    return Nets(G=VEEGANGenerator(cfg.z_dim, data_shape, cfg.width, cfg.depth),
                D=JointDiscriminator(cfg.z_dim, data_shape, cfg.width, cfg.depth))
