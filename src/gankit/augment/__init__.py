"""The augmentation registry: a differentiable module applied to every image D sees.

The loop runs the module on real and fake batches in the D phase and on fakes in the G phase,
so G is trained through it. Its random draws come from the global torch RNG, which each
checkpoint saves, so resumed runs augment exactly as uninterrupted ones.
"""

from __future__ import annotations

from torch import nn

from gankit.errors import GankitError
from gankit.registry import Registry

AUGMENTS: Registry = Registry("augmentation")
register_augment = AUGMENTS.register
list_augments = AUGMENTS.list


def build_augment(cfg, data_shape: tuple[int, ...]) -> nn.Module:
    """`cfg` is the train config (`augment`, `augment_policy`)."""
    return AUGMENTS.build(cfg.augment, cfg, tuple(data_shape))


@register_augment("none")
def build_none(cfg, data_shape: tuple[int, ...]) -> nn.Module:
    return nn.Identity()


def require_images(name: str, data_shape: tuple[int, ...]) -> None:
    if len(data_shape) != 3:
        raise GankitError(f"train.augment={name} works on images, not data of shape {data_shape}; "
                          "set train.augment=none.")


from gankit.augment import diffaugment  # noqa: E402,F401
