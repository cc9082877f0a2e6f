"""The training schedule: what changes as training goes on, as a function of images seen.

`Schedule.phase(images_seen)` returns a `Phase`, the settings of the step about to run. The loop
applies it at the top of every step (`phase.apply(opt_G, opt_D)`) and hands it to the objective's
`make_batch`, so a schedule that grows the resolution, fades in a layer or changes the batch
size (PGGAN) adds fields here and reads them in its objective, with no change to the loop.

Counting in images rather than steps keeps a schedule's meaning when the batch size changes.

Learning rate (`train.lr_schedule`):
- constant: lr_G and lr_D throughout;
- linear: lr_G and lr_D until the last `train.lr_decay_fraction` of the run's images, then a
  straight line to 0 at the end. The default fraction 0.5 is CycleGAN's (Zhu et al. 2017, sec. 7:
  100 epochs at 2e-4, then 100 epochs decaying linearly to 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Phase:
    """The settings of one training step."""

    lr_G: float  # generator learning rate for this step
    lr_D: float  # discriminator learning rate for this step

    def apply(self, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer) -> None:
        for optimizer, lr in ((opt_G, self.lr_G), (opt_D, self.lr_D)):
            for group in optimizer.param_groups:
                group["lr"] = lr


class Schedule:
    """lr as a function of images seen; see the module docstring."""

    def __init__(self, train_cfg, images_per_step: int):
        self.lr_G, self.lr_D = train_cfg.lr_G, train_cfg.lr_D
        self.kind = train_cfg.lr_schedule
        self.total_images = train_cfg.steps * images_per_step  # the run's length, in images shown to D
        # Where the linear decay starts; a constant schedule never reaches it, even when a resume
        # with a smaller batch makes images_seen pass steps * images_per_step.
        self.decay_start = (self.total_images * (1.0 - train_cfg.lr_decay_fraction) if self.kind == "linear"
                            else math.inf)

    def factor(self, images_seen: int) -> float:
        """lr multiplier in [0, 1] for the step that starts after `images_seen` images."""
        if images_seen < self.decay_start:
            return 1.0
        return max(0.0, (self.total_images - images_seen) / max(self.total_images - self.decay_start, 1.0))

    def phase(self, images_seen: int) -> Phase:
        f = self.factor(images_seen)
        return Phase(lr_G=self.lr_G * f, lr_D=self.lr_D * f)

    # A pure function of images seen (saved in the checkpoint) and of the config, so there is no
    # state to carry; the methods exist so that every stateful object saves the same way.
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
