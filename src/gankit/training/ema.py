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
    def __init__(self, halflife_kimg: float, images_per_step: int):
        halflife_images = halflife_kimg * 1000
        self.beta = 0.5 ** (images_per_step / halflife_images) if halflife_images > 0 else 0.0

    @torch.no_grad()
    def update(self, ema: nn.Module, net: nn.Module) -> None:
        for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
            p_ema.lerp_(p, 1.0 - self.beta)
        # Buffers (BatchNorm statistics, spectral-norm vectors) are copied, not averaged.
        for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
            b_ema.copy_(b)
