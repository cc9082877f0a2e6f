"""The model registry: each entry builds a generator/discriminator pair.

A network trained alongside G (VEEGAN's reconstructor) is a submodule of G, and one trained
alongside D (ACGAN's classifier head) a submodule of D: each then shares its side's optimizer,
checkpoint entry and, for G, the EMA, with no extra plumbing. A CycleGAN's G can hold both
generators the same way.

Builders take the model config, the data shape ((2,) for points, (C, H, W) for images) and the
number of classes (0 when unconditional), and return `Nets`. Every network takes an optional
label tensor, so conditional and unconditional models share one training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from gankit.registry import Registry


@dataclass
class Nets:
    G: nn.Module  # G(z: (B, z_dim), labels: (B,) | None) -> samples of the data shape
    D: nn.Module  # D(x: (B, *data_shape), labels: (B,) | None) -> logits (B,)


MODELS: Registry = Registry("model")
register_model = MODELS.register
get_model = MODELS.get
list_models = MODELS.list


def build_nets(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    return MODELS.build(cfg.name, cfg, tuple(data_shape), num_classes)


# Importing the variants registers them; one file per variant.
from gankit.nets import dcgan, mlp  # noqa: E402,F401
