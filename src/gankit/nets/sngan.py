"""SNGAN's ResNet G and D (Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral normalization for
generative adversarial networks", appendix B), for 32 and 64 px.

Spectral norm itself is a switch (`model.spectral_norm_D`, on in the `sngan-*` presets), so
the same architecture can be compared with and without it. The paper trains it with the hinge
loss, Adam lr 2e-4, betas (0, 0.9) and 5 D steps per G step; the preset does the same.
"""

from __future__ import annotations

from gankit.nets import Nets, register_model, require_images
from gankit.nets.resnet import ResNetDiscriminator, ResNetGenerator


@register_model("sngan")
def build_sngan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_images("sngan", data_shape, (32, 64))
    channels, resolution, _ = data_shape
    return Nets(
        G=ResNetGenerator(cfg.z_dim, channels, resolution, cfg.width, batchnorm=cfg.batchnorm_G is not False),
        D=ResNetDiscriminator(channels, resolution, cfg.width),
    )
