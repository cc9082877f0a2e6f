"""The ResNet backbone shared by SNGAN, SNGAN-projection and SAGAN (not registered itself).

Layouts follow Miyato et al. 2018 (appendix B, the CIFAR-10 ResNet) at 32 px, and the
doubling-channel layout of their ImageNet/STL models at 64 px. `width` is D's channel count at
its highest resolution; G at 32 px uses 2 * width (256 for width 128, as in the paper).
Self-attention (SAGAN) is inserted after the block whose output has side `attention_at`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.nets.layers import ConditionalBatchNorm2d, DBlock, GBlock, SelfAttention, orthogonal_init


def generator_channels(resolution: int, width: int) -> list[int]:
    """Channels at 4 px, then after each 2x up-block."""
    if resolution == 32:
        return [2 * width] * 4
    if resolution == 64:
        return [8 * width, 4 * width, 2 * width, width, width]
    raise GankitError(f"the ResNet models support 32 or 64 px, not {resolution}; set data.resolution.")


def discriminator_plan(resolution: int, width: int) -> list[tuple[int, bool]]:
    """(channels, downsample) of each D block."""
    if resolution == 32:
        return [(width, True), (width, True), (width, False), (width, False)]
    if resolution == 64:
        return [(width, True), (2 * width, True), (4 * width, True), (8 * width, True), (8 * width, False)]
    raise GankitError(f"the ResNet models support 32 or 64 px, not {resolution}; set data.resolution.")


def _attention_check(attention_at: int | None, sides: list[int]) -> None:
    if attention_at is not None and attention_at not in sides:
        raise GankitError(f"model.attention_resolution must be one of {sorted(set(sides))} px at this "
                          f"resolution, not {attention_at}.")


class ResNetGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, resolution: int, width: int, num_classes: int = 0,
                 batchnorm: bool = True, attention_at: int | None = None):
        super().__init__()
        chs = generator_channels(resolution, width)
        sides = [8 * 2**i for i in range(len(chs) - 1)]
        _attention_check(attention_at, sides)
        self.z_dim, self.base_ch = z_dim, chs[0]
        self.linear = nn.Linear(z_dim, 4 * 4 * chs[0])
        self.blocks = nn.ModuleList()
        for ch_in, ch_out, side in zip(chs[:-1], chs[1:], sides, strict=True):
            self.blocks.append(GBlock(ch_in, ch_out, num_classes, batchnorm))
            if side == attention_at:
                self.blocks.append(SelfAttention(ch_out))
        self.bn = ConditionalBatchNorm2d(chs[-1], 0, batchnorm)  # the last BN is unconditional
        self.to_rgb = nn.Conv2d(chs[-1], channels, 3, 1, 1)
        orthogonal_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.base_ch, 4, 4)  # (B, ch, 4, 4)
        for block in self.blocks:
            h = block(h, labels)
        return torch.tanh(self.to_rgb(F.relu(self.bn(h, None))))  # (B, C, H, W) in [-1, 1]


class ResNetDiscriminator(nn.Module):
    """Ends in ReLU, global sum pooling and a linear layer; `features` gives the pooled vector
    so that the projection discriminator can add its class term to it."""

    def __init__(self, channels: int, resolution: int, width: int, attention_at: int | None = None):
        super().__init__()
        plan = discriminator_plan(resolution, width)
        sides, side = [], resolution
        for _, down in plan:
            side = side // 2 if down else side
            sides.append(side)
        _attention_check(attention_at, sides)
        self.blocks = nn.ModuleList()
        ch_in, attended = channels, False
        for i, ((ch, down), side) in enumerate(zip(plan, sides, strict=True)):
            self.blocks.append(DBlock(ch_in, ch, down, first=i == 0))
            if side == attention_at and not attended:
                self.blocks.append(SelfAttention(ch))
                attended = True
            ch_in = ch
        self.feature_dim = ch_in
        self.linear = nn.Linear(ch_in, 1)
        orthogonal_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for block in self.blocks:
            h = block(h)
        return F.relu(h).sum(dim=(2, 3))  # (B, ch): sum, not mean, pooling as in the paper

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.features(x)).squeeze(1)  # (B,) logits
