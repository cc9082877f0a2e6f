"""Random tensors shaped like a dataset, for when its files are not on disk.

`benchmarks/train_speed.py` times a preset's model on them, and the preset tests train its
wiring on them; neither is a result about the dataset, and both say so. The loader follows
the dataset contract (`next`, `state_dict`, `load_state_dict`) so the training loop runs
unchanged.
"""

from __future__ import annotations

import torch

from gankit.data.base import SampledLoader
from gankit.ranks import SINGLE, Ranks

# Classes of the labelled image datasets the presets name; unlisted datasets are unlabelled.
# Unpaired data labels each image with its domain (0 = A, 1 = B).
KNOWN_CLASSES = {"mnist": 10, "mnist5k": 10, "fashion-mnist": 10, "cifar10": 10, "stacked-mnist": 1000, "unpaired": 2}


class StandInImages:
    def __init__(self, shape: tuple[int, ...], num_classes: int = 0):
        self.shape = tuple(shape)
        self.num_classes = num_classes

    @classmethod
    def for_config(cls, data_cfg) -> StandInImages:
        side = data_cfg.resolution
        return cls((data_cfg.channels, side, side), KNOWN_CLASSES.get(data_cfg.name, 0))

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = torch.rand(n, *self.shape, generator=generator) * 2 - 1  # in [-1, 1]
        labels = torch.randint(self.num_classes, (n,), generator=generator) if self.num_classes else None
        return x, labels

    def loader(self, batch_size: int, seed: int, device: torch.device, ranks: Ranks = SINGLE) -> SampledLoader:
        return SampledLoader(self.draw, batch_size, seed, device, ranks)
