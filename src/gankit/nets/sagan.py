"""SAGAN (Zhang, Goodfellow, Metaxas & Odena 2019, "Self-attention generative adversarial
networks").

A ResNet G and D with a self-attention block at `model.attention_resolution` in each, so that
distant parts of an image (both eyes of a face) can be made consistent. The paper puts spectral
norm on G as well as D, trains with the hinge loss and TTUR (lr_D 4e-4, lr_G 1e-4, Adam
betas (0, 0.9)); the `sagan-celeba` preset sets all of that.
"""

from __future__ import annotations

from gankit.nets import Nets, register_model, require_images
from gankit.nets.resnet import ResNetDiscriminator, ResNetGenerator


@register_model("sagan")
def build_sagan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_images("sagan", data_shape, (32, 64))
    channels, resolution, _ = data_shape
    return Nets(
        G=ResNetGenerator(cfg.z_dim, channels, resolution, cfg.width, batchnorm=cfg.batchnorm_G is not False,
                          attention_at=cfg.attention_resolution),
        D=ResNetDiscriminator(channels, resolution, cfg.width, attention_at=cfg.attention_resolution),
    )
