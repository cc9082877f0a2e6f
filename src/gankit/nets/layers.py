"""Pieces shared by several architectures."""

from __future__ import annotations

from torch import nn


def dcgan_init(module: nn.Module) -> None:
    """DCGAN weight init (Radford et al. 2016, sec. 4): conv/linear weights ~ N(0, 0.02).

    BatchNorm scales start at N(1, 0.02) so the layers begin close to the identity.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
