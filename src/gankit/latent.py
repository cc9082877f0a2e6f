"""Latent priors p(z), in a registry: normal, uniform and truncated normal.

Every prior draws from a dedicated generator so that resuming restores the exact noise stream.
"""

from __future__ import annotations

import torch

from gankit.registry import Registry

PRIORS: Registry = Registry("latent prior")


class NormalPrior:
    """z ~ N(0, I), the prior of DCGAN and most GANs since."""

    def __init__(self, z_dim: int):
        self.z_dim = z_dim

    def sample(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator, device=device)  # (n, z_dim)


class UniformPrior(NormalPrior):
    """z ~ U[-1, 1]^d, the prior of the original GAN and of many DCGAN reimplementations."""

    def sample(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        return torch.rand(n, self.z_dim, generator=generator, device=device) * 2 - 1


class TruncatedNormalPrior(NormalPrior):
    """N(0, I) restricted to [-threshold, threshold] per coordinate (seed 001's `--rtype=tnormal`).

    Used at sampling time it is the truncation trick of BigGAN (Brock, Donahue & Simonyan 2019,
    sec. 3.1): a smaller threshold trades variety for fidelity. torch draws it by inverse CDF,
    so one uniform draw per coordinate, never a rejection loop.
    """

    def __init__(self, z_dim: int, threshold: float):
        super().__init__(z_dim)
        self.threshold = threshold

    def sample(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        z = torch.empty(n, self.z_dim, device=device)
        return torch.nn.init.trunc_normal_(z, 0.0, 1.0, -self.threshold, self.threshold, generator=generator)


@PRIORS.register("normal")
def build_normal(cfg) -> NormalPrior:
    return NormalPrior(cfg.z_dim)


@PRIORS.register("uniform")
def build_uniform(cfg) -> UniformPrior:
    return UniformPrior(cfg.z_dim)


@PRIORS.register("truncnormal")
def build_truncnormal(cfg) -> TruncatedNormalPrior:
    return TruncatedNormalPrior(cfg.z_dim, cfg.truncation)


def build_prior(cfg) -> NormalPrior:
    return PRIORS.build(cfg.latent, cfg)
