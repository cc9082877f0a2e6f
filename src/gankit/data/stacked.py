"""Stacked MNIST: three MNIST digits as the R, G and B channels of one image, 1,000 modes.

Introduced to count the modes a GAN covers (Metz et al. 2017, unrolled GAN; used by VEEGAN,
PacGAN and others): digits d1, d2, d3 in the red, green and blue channels give the label
100*d1 + 10*d2 + d3, one of 1,000 classes, so a mode-counting classifier can read it back.

The digits come from `mnist` or, offline, `mnist5k` (`data.stacked_source`). With
`data.stacked_size=0` every batch draws fresh triples of digits (any of the N^3 combinations of
the N source digits can appear); with `data.stacked_size=N` one fixed set of N
images is drawn once from a fixed seed (FIXED_SET_SEED), the same in every run. The image is
always RGB whatever `data.channels` says, at `data.resolution`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from gankit.data import build_dataset, register_dataset
from gankit.data.base import ImageTensors, to_unit_range
from gankit.ranks import SINGLE, Ranks

FIXED_SET_SEED = 2017  # the fixed set must not change with train.seed: it is the dataset
PLACE_VALUES = torch.tensor([100, 10, 1])


def stack(digits: torch.Tensor, digit_labels: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """index (n, 3) into digits (N, 1, R, R) -> images (n, 3, R, R) and labels (n,)."""
    images = digits[index.flatten(), 0].view(len(index), 3, *digits.shape[-2:])
    labels = (digit_labels[index] * PLACE_VALUES.to(digit_labels.device)).sum(1)
    return images, labels


@dataclass
class StackedOnTheFly:
    digits: torch.Tensor  # (N, 1, R, R) uint8 grey digits
    digit_labels: torch.Tensor  # (N,) int64
    num_classes: int = 1000

    @property
    def shape(self) -> tuple[int, ...]:
        return (3, *self.digits.shape[-2:])

    def __len__(self) -> int:
        return len(self.digits) ** 3

    def loader(self, batch_size: int, seed: int, device: torch.device, ranks: Ranks = SINGLE) -> StackedLoader:
        return StackedLoader(self, batch_size, seed, device, ranks)


class StackedLoader:
    """Fresh triples every batch; the generator state is the whole position."""

    def __init__(self, data: StackedOnTheFly, batch_size: int, seed: int, device: torch.device,
                 ranks: Ranks = SINGLE):
        ranks.rows(batch_size)
        self.digits, self.digit_labels = data.digits.to(device), data.digit_labels.to(device)
        self.batch_size, self.device, self.ranks = batch_size, device, ranks
        self.generator = torch.Generator().manual_seed(seed)

    def next(self, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(self.digits), (batch_size or self.batch_size, 3), generator=self.generator)
        index = self.ranks.take(index).to(self.device)
        images, labels = stack(self.digits, self.digit_labels, index)
        return to_unit_range(images), labels  # (B, 3, R, R) in [-1, 1], (B,) in [0, 1000)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


@register_dataset("stacked-mnist")
def build_stacked_mnist(cfg):
    # The digits are needed whole, in memory, whatever the budget says: they are small.
    source = dataclasses.replace(cfg, name=cfg.stacked_source, channels=1, in_memory_budget_mb=1 << 20)
    digits = build_dataset(source)
    if not cfg.stacked_size:
        return StackedOnTheFly(digits.images, digits.labels)
    generator = torch.Generator().manual_seed(FIXED_SET_SEED)
    index = torch.randint(len(digits), (cfg.stacked_size, 3), generator=generator)
    images, labels = stack(digits.images, digits.labels, index)
    return ImageTensors(images.contiguous(), labels, num_classes=1000)
