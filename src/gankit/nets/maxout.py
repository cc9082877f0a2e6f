"""PacGAN's networks for the 2-D mixtures (Lin, Khetan, Fanti & Oh 2018, sec. 5.1 and the
authors' code, synthetic_data_experiments/): the G and D behind Table 1.

- G: `model.depth` (4) hidden layers of `model.width` (400) ReLU units, each after BatchNorm,
  then a linear layer to the 2-D point. BatchNorm makes the linear biases before it redundant,
  so those layers have none, as in the authors' code.
- D: `model.depth_D` (3) maxout layers (Goodfellow et al. 2013, "Maxout networks") of
  `model.width_D` (200) units, each the max of `model.maxout_pieces` (5) linear pieces, then a
  linear logit. It reads packs of `model.pack` samples concatenated along the features
  (pack 1 is the plain GAN row of Table 1).
Weights start from N(0, 0.02) and biases at 0 (the authors' IsotropicGaussian(0.02)).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankit.nets import Nets, register_model
from gankit.nets.layers import pack


class Maxout(nn.Module):
    """y_j = max_k (W_k x + b_k)_j: a learned piecewise-linear convex activation."""

    def __init__(self, dim_in: int, dim_out: int, pieces: int):
        super().__init__()
        self.dim_out, self.pieces = dim_out, pieces
        self.linear = nn.Linear(dim_in, dim_out * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.dim_out, self.pieces).amax(2)  # (B, dim_out)


class BatchNormGenerator(nn.Module):
    def __init__(self, z_dim: int, data_shape: tuple[int, ...], width: int, depth: int):
        super().__init__()
        self.z_dim, self.data_shape = z_dim, data_shape
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(z_dim if i == 0 else width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(width, math.prod(data_shape)))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.data_shape)  # (B, *data_shape)


class PackedMaxoutDiscriminator(nn.Module):
    def __init__(self, data_shape: tuple[int, ...], width: int, depth: int, pieces: int, m: int,
                 input_scale: float = 1.0):
        super().__init__()
        self.m, self.input_scale = m, input_scale  # see MLPDiscriminator for input_scale
        dim = m * math.prod(data_shape)
        self.net = nn.Sequential(*(Maxout(dim if i == 0 else width, width, pieces) for i in range(depth)),
                                 nn.Linear(width, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(pack(x.flatten(1) * self.input_scale, self.m)).squeeze(1)  # (B / m,) logits


def _normal_init(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


@register_model("maxout")
def build_maxout(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    G = BatchNormGenerator(cfg.z_dim, data_shape, cfg.width, cfg.depth)
    D = PackedMaxoutDiscriminator(data_shape, cfg.width_D or cfg.width, cfg.depth_D or cfg.depth,
                                  cfg.maxout_pieces, cfg.pack, cfg.input_scale_D)
    _normal_init(G)
    _normal_init(D)
    return Nets(G=G, D=D)
