"""Latent priors p(z), in a registry; the zoo adds uniform and truncated normal."""

from __future__ import annotations

import torch

from gankit.registry import Registry

PRIORS: Registry = Registry("latent prior")


class NormalPrior:
    """z ~ N(0, I), the prior of DCGAN and most GANs since."""

    def __init__(self, z_dim: int):
        self.z_dim = z_dim

    def sample(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        # Drawn from a dedicated generator so that resuming restores the exact noise stream.
        return torch.randn(n, self.z_dim, generator=generator, device=device)  # (n, z_dim)


@PRIORS.register("normal")
def build_normal(cfg) -> NormalPrior:
    return NormalPrior(cfg.z_dim)


def build_prior(cfg) -> NormalPrior:
    return PRIORS.build(cfg.latent, cfg)
