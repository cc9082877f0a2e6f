"""DiffAugment (Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable augmentation for data-efficient
GAN training"), with the paper's three policies:

- color: random brightness (+U[-0.5, 0.5]), saturation (x U[0, 2] around the per-pixel channel
  mean) and contrast (x U[0.5, 1.5] around the image mean);
- translation: shift by up to 1/8 of the image side in each direction, zero-filled;
- cutout: zero a random square of half the image side.

Each image in a batch draws its own parameters. Every op is a differentiable function of the
input (additions, products, index gathers), so G's gradient flows through it: that is the
point of the method, since D then never sees an un-augmented fake while G still learns.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.augment import register_augment, require_images
from gankit.ranks import draw_share

TRANSLATION_RATIO = 0.125  # of the image side, as in the paper
CUTOUT_RATIO = 0.5


# Each draw goes through draw_share: under several processes, a rank keeps its rows of a draw for
# the global batch, so ranks augment differently and N ranks match one process's augmentations.
def _rand(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return draw_share(lambda n: torch.rand(n, *shape[1:], device=x.device, dtype=x.dtype), shape[0])


def _randint(low: int, high: int, x: torch.Tensor, *shape: int) -> torch.Tensor:
    return draw_share(lambda n: torch.randint(low, high, (n, *shape[1:]), device=x.device), shape[0])


def color(x: torch.Tensor) -> torch.Tensor:
    b = x.shape[0]
    x = x + (_rand(x, b, 1, 1, 1) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, b, 1, 1, 1) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, b, 1, 1, 1) + 0.5) + mean  # contrast


def translation(x: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    ty = _randint(-sy, sy + 1, x, b, 1)
    tx = _randint(-sx, sx + 1, x, b, 1)
    padded = nn.functional.pad(x, (sx, sx, sy, sy))  # what shifts in is 0 (mid-grey in [-1, 1])
    rows = torch.arange(h, device=x.device)[None] + sy + ty  # (B, H) rows of `padded` to read
    cols = torch.arange(w, device=x.device)[None] + sx + tx  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    # The square's top-left corner; it may hang over the border, as in the paper.
    y0 = _randint(0, h + (1 - ch % 2), x, b, 1, 1) - ch // 2
    x0 = _randint(0, w + (1 - cw % 2), x, b, 1, 1) - cw // 2
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= y0) & (rows < y0 + ch) & (cols >= x0) & (cols < x0 + cw)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPS = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment(nn.Module):
    def __init__(self, policy: list[str]):
        super().__init__()
        self.policy = [p for p in OPS if p in policy]  # the paper's order, whatever the config's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.policy:
            x = OPS[name](x)
        return x  # (B, C, H, W)

    def extra_repr(self) -> str:
        return ",".join(self.policy)


@register_augment("diffaugment")
def build_diffaugment(cfg, data_shape: tuple[int, ...]) -> DiffAugment:
    require_images("diffaugment", data_shape)
    return DiffAugment(cfg.augment_policy)
