"""2-D Gaussian mixtures used to study mode collapse.

ring8: 8 Gaussians evenly spaced on a circle (Metz et al. 2017, unrolled GAN; VEEGAN; PacGAN).
grid25: 25 Gaussians on the lattice {-4, -2, 0, 2, 4}^2 (VEEGAN; PacGAN).
Samples are drawn afresh for every batch, from a seeded generator, as in those papers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gankit.data import register_dataset
from gankit.data.base import SampledLoader
from gankit.ranks import SINGLE, Ranks


@dataclass
class GaussianMixture:
    means: torch.Tensor  # (K, 2)
    std: float  # isotropic std of every component
    num_classes: int = 0  # mixtures train unconditionally; the mode index is not a label

    shape = (2,)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(points (n, 2), mode index (n,)), with modes chosen uniformly."""
        modes = torch.randint(len(self.means), (n,), generator=generator)
        points = self.means[modes] + self.std * torch.randn(n, 2, generator=generator)
        return points, modes

    def loader(self, batch_size: int, seed: int, device: torch.device, ranks: Ranks = SINGLE) -> SampledLoader:
        # The mode index is not a label: mixtures train unconditionally.
        return SampledLoader(lambda n, generator: (self.sample(n, generator)[0], None), batch_size, seed, device,
                             ranks)


def ring_means(num_modes: int, radius: float) -> torch.Tensor:
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], 1)).float()


def grid_means(grid_size: int, spacing: float) -> torch.Tensor:
    # Centred lattice: grid_size=5, spacing=2 gives {-4, -2, 0, 2, 4}.
    axis = (torch.arange(grid_size, dtype=torch.float64) - (grid_size - 1) / 2) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], 1).float()


@register_dataset("ring8")
def build_ring(cfg) -> GaussianMixture:
    return GaussianMixture(ring_means(cfg.num_modes, cfg.radius), cfg.std if cfg.std is not None else 0.01)


@register_dataset("grid25")
def build_grid(cfg) -> GaussianMixture:
    return GaussianMixture(grid_means(cfg.grid_size, cfg.grid_spacing), cfg.std if cfg.std is not None else 0.05)
