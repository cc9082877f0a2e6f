"""Exponential moving average of the generator's weights.

Yazici et al. 2019 ("The unusual effectiveness of averaging in GAN training") show that an EMA
of G's weights gives better samples than G itself. As in EDM/StyleGAN, the decay is set by a
half-life in images, so the setting means the same at any batch size or GPU count:
beta = 0.5 ** (images per step / half-life in images).
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """`update(ema, net, images)` after each G step, with the real images that step counted in
    `images_seen` (every D batch of it): the half-life is then in the images the logs count, at any
    batch size, accumulation or number of D steps, and when the batch size changes mid-run (PGGAN)."""

    def __init__(self, halflife_kimg: float):
        self.halflife_images = halflife_kimg * 1000

    def beta(self, images: int) -> float:
        return 0.5 ** (images / self.halflife_images) if self.halflife_images > 0 else 0.0

    @torch.no_grad()
    def update(self, ema: nn.Module, net: nn.Module, images: int) -> None:
        beta = self.beta(images)
        for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
            p_ema.lerp_(p, 1.0 - beta)
        # Buffers (BatchNorm statistics, spectral-norm vectors) are copied, not averaged.
        for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
            b_ema.copy_(b)
