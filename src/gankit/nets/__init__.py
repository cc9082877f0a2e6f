"""The model registry: each entry builds a generator/discriminator pair.

A network trained alongside G (VEEGAN's reconstructor) is a submodule of G, and one trained
alongside D (ACGAN's classifier head) a submodule of D: each then shares its side's optimizer,
checkpoint entry and, for G, the EMA, with no extra plumbing. A CycleGAN's G can hold both
generators the same way.

Builders take the model config, the data shape ((2,) for points, (C, H, W) for images) and the
number of classes (0 when unconditional), and return `Nets`. Every network takes an optional
label tensor, so conditional and unconditional models share one training loop.

Two optional D methods extend that contract, and the contract tests check both:
- `D.logits_and_classes(x)` -> ((B,) adversarial logits, (B, num_classes) class logits), for
  discriminators with an auxiliary classifier (ACGAN);
- `D.needs_z = True`: D scores (x, z) pairs and is called `D(x, labels, z)` (VEEGAN); its G then
  has `G.reconstruct(x) -> z`.
A PacGAN D returns one logit per pack of `model.pack` samples, (B / pack,).

`build_nets` applies the config's cross-cutting switches after the builder: the init scheme,
then spectral norm (which wraps the initialised weight, so it must come second), then the pixel
range the nets work in (`model.pixel_range`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from gankit.errors import GankitError
from gankit.registry import Registry


@dataclass
class Nets:
    G: nn.Module  # G(z: (B, z_dim), labels: (B,) | None) -> samples of the data shape
    D: nn.Module  # D(x: (B, *data_shape), labels: (B,) | None) -> logits (B,)


MODELS: Registry = Registry("model")
register_model = MODELS.register
get_model = MODELS.get
list_models = MODELS.list


def register_translator(builder):
    """Mark a model builder as image-to-image: its G takes images, not noise (CycleGAN)."""
    builder.translates = True
    return builder


def is_translator(name: str) -> bool:
    return name in MODELS and getattr(MODELS.get(name), "translates", False)


def register_conditional(builder):
    """Mark a model builder as class-conditional: its G draws the class it is given. Only these get
    class labels in sample grids and from `gankit sample --class`; any other G ignores labels, so a
    grid of dcgan on MNIST must not label its rows with classes it never drew."""
    builder.conditional = True
    return builder


def is_conditional(name: str) -> bool:
    return name in MODELS and getattr(MODELS.get(name), "conditional", False)


def drawn_classes(name: str, num_classes: int) -> int:
    """The classes model `name` draws from: the data's for a conditional G, none for any other,
    even one trained on labelled data (its previews and samples carry no labels)."""
    return num_classes if is_conditional(name) else 0


def build_nets(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    from gankit.nets.layers import INITS, apply_spectral_norm

    nets = MODELS.build(cfg.name, cfg, tuple(data_shape), num_classes)
    if cfg.init != "auto":
        INITS[cfg.init](nets.G)
        INITS[cfg.init](nets.D)
    if cfg.spectral_norm_G:
        apply_spectral_norm(nets.G)
    if cfg.spectral_norm_D:
        apply_spectral_norm(nets.D, embeddings=True)
    if list(cfg.pixel_range) != [-1.0, 1.0]:
        work_in_range(nets, cfg.name, *cfg.pixel_range)
    return nets


def work_in_range(nets: Nets, model: str, low: float, high: float) -> None:
    """G and D work in pixels of [low, high]; everything outside them (data, samples, metrics) stays in [-1, 1].

    DCGAN-tensorflow feeds D pixels / 255 in [0, 1] beside a tanh G in [-1, 1], and PacGAN's Stacked
    MNIST rows were made with that code: G's background is then tanh's midpoint, not its
    saturated end, which changes how the game starts (README, mode-collapse table). D's input is
    mapped from [-1, 1] to [low, high] and G's output back, so D sees exactly what the authors'
    D saw. Hooks rather than wrappers keep parameter names (checkpoints) and the nets' own
    methods; the EMA copy of G keeps the hook. Penalties take gradients in [-1, 1] pixels.
    """
    if is_translator(model) or hasattr(nets.D, "logits_and_classes") or getattr(nets.D, "needs_z", False):
        raise GankitError(f"model.pixel_range works with noise-to-image models whose D takes only images, not "
                          f"{model}; leave it at [-1, 1].")
    half = (high - low) / 2

    def to_nets(module, args):
        return (low + (args[0] + 1) * half, *args[1:])

    def from_nets(module, args, out):
        return (out - low) / half - 1

    nets.D.register_forward_pre_hook(to_nets)
    nets.G.register_forward_hook(from_nets)


def require_classes(model: str, num_classes: int) -> None:
    """Conditional models need a labelled dataset; say so before anything is built."""
    if not num_classes:
        raise GankitError(f"model {model} is conditional and needs a labelled dataset such as mnist5k "
                          "or cifar10; change data.name or model.name.")


def require_images(model: str, data_shape: tuple[int, ...], resolutions: tuple[int, ...] | None = None) -> None:
    if len(data_shape) != 3:
        raise GankitError(f"model {model} needs image data, but this dataset has shape {data_shape}; "
                          "use model.name=mlp.")
    if resolutions and data_shape[1] not in resolutions:
        raise GankitError(f"model {model} supports {' or '.join(map(str, resolutions))} px, not "
                          f"{data_shape[1]}; set data.resolution.")


# Importing the variants registers them; one file per variant.
from gankit.nets import (  # noqa: E402,F401
    acgan,
    cgan,
    cyclegan,
    dcgan,
    dcgan_tf,
    maxout,
    mlp,
    pacgan,
    pggan,
    sagan,
    sngan,
    sngan_projection,
    veegan,
)
