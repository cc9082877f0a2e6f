"""CycleGAN's networks (Zhu, Park, Isola & Efros 2017, sec. 4 and appendix 7.2).

G is the ResNet generator of Johnson et al. 2016 as CycleGAN uses it: reflection padding, a
7x7 stem, two stride-2 downsamplings, N residual blocks (9 at 256 px, 6 at 128 px and below;
`model.resnet_blocks` overrides), two transposed-conv upsamplings and a 7x7 conv to Tanh, with
InstanceNorm (no affine, no running statistics) after every conv but the last.
D is the 70x70 PatchGAN: 4x4 convs with strides 2, 2, 2, 1, 1, no norm on the first layer,
LeakyReLU(0.2), and one logit per overlapping 70x70 patch at 256 px.
Weights start at N(0, 0.02) as in the authors' code (`init_type=normal`).

One model holds both directions: `G.G_AB`, `G.G_BA` and `D.D_A`, `D.D_B` are submodules, so
each side shares one optimizer, one checkpoint entry and, for G, one EMA. Under the registry
contract a translation G takes images, not noise: `G(x, labels)` translates each image to the
other domain, where `labels` says which domain it is in (0 = A, 1 = B; None = all A), and
`D(x, labels)` returns each image's mean patch logit under its domain's discriminator.
"""

from __future__ import annotations

import torch
from torch import nn

from gankit.errors import GankitError
from gankit.nets import Nets, register_model, register_translator, require_images


def _norm(channels: int) -> nn.Module:
    # The authors' instance norm: per-image statistics, no learned scale, nothing tracked, so
    # train and eval modes compute the same thing and any batch size works.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResidualBlock(nn.Module):
    """x + (pad, conv3x3, IN, ReLU, pad, conv3x3, IN)(x): the reference block, without dropout."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(B, C, H, W) in [-1, 1] -> (B, C, H, W) in [-1, 1]; H and W divisible by 4."""

    def __init__(self, channels: int, width: int, blocks: int):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), _norm(width), nn.ReLU(True)]
        for mult in (1, 2):  # two stride-2 downsamplings: width -> 2 width -> 4 width
            layers += [nn.Conv2d(width * mult, width * mult * 2, 3, stride=2, padding=1), _norm(width * mult * 2),
                       nn.ReLU(True)]
        layers += [ResidualBlock(width * 4) for _ in range(blocks)]
        for mult in (4, 2):  # two transposed-conv upsamplings back to the input size
            layers += [nn.ConvTranspose2d(width * mult, width * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(width * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """(B, C, H, W) -> (B, 1, H', W') patch logits; 70x70 receptive field (3 stride-2 layers)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = width
        for stride in (2, 2, 1):  # with the first layer: strides 2, 2, 2, 1, then the logit layer (1)
            out = min(ch * 2, width * 8)
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), _norm(out), nn.LeakyReLU(0.2, True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _by_domain(x: torch.Tensor, labels: torch.Tensor | None, net_a: nn.Module, net_b: nn.Module,
               reduce=lambda y: y) -> torch.Tensor:
    """net_a on the images of domain A (label 0 or no labels), net_b on those of domain B."""
    if labels is None:
        return reduce(net_a(x))
    is_b = labels.bool()
    parts = [(idx, reduce(net(x[idx]))) for idx, net in ((~is_b, net_a), (is_b, net_b)) if idx.any()]
    out = x.new_empty((len(x), *parts[0][1].shape[1:]))
    for idx, value in parts:
        out[idx] = value
    return out


class CycleGenerators(nn.Module):
    translates = True  # G maps images to images: objectives and samplers feed it images, not noise

    def __init__(self, channels: int, width: int, blocks: int):
        super().__init__()
        self.G_AB = ResnetGenerator(channels, width, blocks)  # domain A -> domain B
        self.G_BA = ResnetGenerator(channels, width, blocks)  # domain B -> domain A

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return _by_domain(x, labels, self.G_AB, self.G_BA)


class CycleDiscriminators(nn.Module):
    def __init__(self, channels: int, width: int):
        super().__init__()
        self.D_A = PatchDiscriminator(channels, width)  # real A vs G_BA(B)
        self.D_B = PatchDiscriminator(channels, width)  # real B vs G_AB(A)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return _by_domain(x, labels, self.D_A, self.D_B, reduce=lambda y: y.flatten(1).mean(1))  # (B,)


def default_blocks(resolution: int) -> int:
    return 9 if resolution >= 256 else 6  # the paper's choice for 256 px and for 128 px (and below)


@register_translator
@register_model("cyclegan")
def build_cyclegan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_images("cyclegan", data_shape)
    if not num_classes:
        # The label of each image is its domain: it picks G_AB or G_BA, D_A or D_B.
        raise GankitError("model cyclegan is conditional on each image's domain, so it needs two-domain data; "
                          "use data.name=unpaired (trainA/ and trainB/ folders) or data.name=digits2mnist.")
    channels, resolution = data_shape[0], data_shape[1]
    if resolution % 4:
        raise GankitError(f"model cyclegan downsamples twice, so data.resolution must be a multiple of 4, "
                          f"not {resolution}.")
    blocks = cfg.resnet_blocks or default_blocks(resolution)
    nets = Nets(G=CycleGenerators(channels, cfg.width, blocks), D=CycleDiscriminators(channels, cfg.width))
    for module in (nets.G, nets.D):
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
    return nets
