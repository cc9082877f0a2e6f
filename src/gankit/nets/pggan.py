"""PGGAN (Karras, Aila, Laine & Lehtinen 2018, "Progressive growing of GANs for improved quality,
stability, and variation"), following the paper (sec. 2-4, table 2) and the authors' code:

- every block is built up front, from 4x4 to the data resolution, so the optimizers never change
  shape; only the blocks up to the current resolution take part in a forward pass;
- the current phase is (resolution, alpha), set with `set_phase` and saved in the state_dict
  (as extra state), so a checkpoint, `gankit sample` and G_ema all know the resolution they are at;
- while a new block fades in (alpha from 0 to 1), G's output is lerp(upsampled old toRGB output,
  new toRGB output, alpha) and D's input features lerp(fromRGB(avgpooled x), new block(fromRGB(x)),
  alpha), sec. 2 and figure 2;
- equalized learning rate (sec. 4.1): weights drawn from N(0, 1) and scaled at run time by the
  He constant gain / sqrt(fan_in), so Adam's per-weight step size means the same in every layer;
- pixelwise feature normalisation after every conv in G (sec. 4.2);
- minibatch standard deviation over groups of 4 as an extra feature map in D's last block (sec. 3);
- 1x1 toRGB / fromRGB convolutions, nearest-neighbour upsampling and 2x2 average-pool downsampling;
- leaky ReLU 0.2 everywhere, no output non-linearity (the authors' G is linear at toRGB; its
  samples are clipped to [-1, 1] for display). Here G is linear in training and clamps its output
  to [-1, 1] in eval mode, where samples are drawn for grids and metrics.

Channels: `model.width` at the data resolution, doubling at every halving of the resolution and
capped at `model.max_width` (the paper: 512 to 32 px, then halving: 256 at 64, 128 at 128...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.nets import Nets, register_model, require_images

START_RESOLUTION = 4  # the paper starts both networks at 4x4


def check_resolution(resolution: int) -> None:
    if resolution < 8 or resolution & (resolution - 1):
        raise GankitError(f"PGGAN grows by doubling from 4 px, so data.resolution must be a power of two "
                          f"from 8 (8, 16, 32, 64, 128...), not {resolution}.")


def resolutions_up_to(resolution: int) -> list[int]:
    """[4, 8, ..., resolution]: the resolution after each growth."""
    return [START_RESOLUTION * 2**i for i in range(int(math.log2(resolution // START_RESOLUTION)) + 1)]


class EqualizedConv2d(nn.Module):
    """Conv2d with equalized learning rate: w ~ N(0, 1) stored, w * gain / sqrt(fan_in) used."""

    def __init__(self, ch_in: int, ch_out: int, kernel: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(ch_out, ch_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(ch_out))
        self.scale = gain / math.sqrt(ch_in * kernel * kernel)  # He's constant, applied at run time
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """Linear layer with equalized learning rate (see EqualizedConv2d)."""

    def __init__(self, features_in: int, features_out: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(features_out, features_in))
        self.bias = nn.Parameter(torch.zeros(features_out))
        self.scale = gain / math.sqrt(features_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each pixel's feature vector scaled to unit mean square (sec. 4.2); stops G's magnitudes
    escalating in the G-D competition, where the paper found BatchNorm unnecessary."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """(B, C, H, W) -> (B, C + 1, H, W): the std of each feature over a group of samples, averaged
    to one number per group and appended as a constant map (sec. 3), so D can see a batch's lack of
    variety. Sample i joins group i % (B/g), as the authors' reshape does; g is the largest group
    size up to `group_size` that divides the batch (the authors require that it divides)."""
    b, c, h, w = x.shape
    g = next(size for size in range(min(group_size, b), 0, -1) if b % size == 0)
    y = x.view(g, b // g, c, h, w)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (B/g, C, H, W)
    std = std.mean(dim=(1, 2, 3)).view(b // g, 1, 1, 1).repeat(g, 1, h, w)  # (B, 1, H, W)
    return torch.cat([x, std], dim=1)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class Growing(nn.Module):
    """The phase both networks share: the resolution they work at and the fade-in alpha of its block.

    Kept as extra state in the state_dict, so a checkpoint restores the networks at their phase."""

    def __init__(self, full_resolution: int):
        super().__init__()
        self.full_resolution = full_resolution
        self.resolution, self.alpha = full_resolution, 1.0  # grown and faded in unless set otherwise

    def set_phase(self, resolution: int, alpha: float) -> None:
        if resolution not in resolutions_up_to(self.full_resolution):
            raise GankitError(f"this PGGAN grows from 4 to {self.full_resolution} px in doublings; "
                              f"it cannot work at {resolution} px.")
        self.resolution, self.alpha = int(resolution), float(alpha)

    def get_extra_state(self) -> dict:
        return {"resolution": self.resolution, "alpha": self.alpha}

    def set_extra_state(self, state: dict) -> None:
        self.set_phase(state["resolution"], state["alpha"])

    def active_parameters(self) -> list[nn.Parameter]:
        """The parameters the current phase uses (the others get no gradient, and Adam skips them)."""
        rgb = {self.level} | ({self.level - 1} if self.alpha < 1 and self.level else set())
        unused = {id(p) for i, layer in enumerate(self.rgb) if i not in rgb for p in layer.parameters()}
        unused |= {id(p) for block in self.convs[self.level + 1:] for p in block.parameters()}
        return [p for p in self.parameters() if id(p) not in unused]

    @property
    def level(self) -> int:
        """Index of the current resolution's block: 0 at 4 px."""
        return int(math.log2(self.resolution // START_RESOLUTION))


def _channels(resolution: int, full: int, width: int, max_width: int) -> int:
    return min(max_width, width * full // resolution)


class PGGANGenerator(Growing):
    linear_output = True  # no Tanh: the range holds only in eval mode, where the output is clamped

    def __init__(self, z_dim: int, channels: int, resolution: int, width: int, max_width: int):
        super().__init__(resolution)
        self.z_dim = z_dim
        sizes = resolutions_up_to(resolution)
        ch = [_channels(r, resolution, width, max_width) for r in sizes]
        # 4x4 block: latent -> dense 4x4 (the paper's 4x4 conv on a 1x1 input) -> conv3x3.
        # The authors scale this dense layer's gain by 1/4 as it feeds 16 pixels.
        self.dense = EqualizedLinear(z_dim, ch[0] * 16, gain=math.sqrt(2) / 4)
        self.convs = nn.ModuleList([nn.ModuleList([EqualizedConv2d(ch[0], ch[0], 3)])])
        for i in range(1, len(sizes)):
            self.convs.append(nn.ModuleList([EqualizedConv2d(ch[i - 1], ch[i], 3), EqualizedConv2d(ch[i], ch[i], 3)]))
        # toRGB per resolution, linear (gain 1) as the authors'.
        self.rgb = nn.ModuleList([EqualizedConv2d(c, channels, 1, gain=1.0) for c in ch])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # Normalising z too (as the authors do) puts every latent on the same sphere.
        h = _lrelu(self.dense(pixel_norm(z))).view(z.shape[0], -1, START_RESOLUTION, START_RESOLUTION)
        h = pixel_norm(h)
        previous = h
        for level, block in enumerate(self.convs[: self.level + 1]):
            if level:
                previous = h
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            for conv in block:
                h = pixel_norm(_lrelu(conv(h)))
        out = self.rgb[self.level](h)  # (B, C, R, R)
        if self.alpha < 1 and self.level > 0:
            # The new block fades in over the upsampled output of the block it grew from.
            old = F.interpolate(self.rgb[self.level - 1](previous), scale_factor=2, mode="nearest")
            out = torch.lerp(old, out, self.alpha)
        return out if self.training else out.clamp(-1, 1)


class PGGANDiscriminator(Growing):
    def __init__(self, channels: int, resolution: int, width: int, max_width: int, mbstd_group: int = 4):
        super().__init__(resolution)
        self.mbstd_group = mbstd_group
        sizes = resolutions_up_to(resolution)
        ch = [_channels(r, resolution, width, max_width) for r in sizes]
        self.rgb = nn.ModuleList([EqualizedConv2d(channels, c, 1) for c in ch])  # fromRGB per resolution
        # Block i takes ch[i] at resolution sizes[i] down to ch[i-1] at half size; block 0 is the last.
        self.convs = nn.ModuleList([nn.ModuleList([EqualizedConv2d(ch[0] + 1, ch[0], 3)])])
        for i in range(1, len(sizes)):
            self.convs.append(nn.ModuleList([EqualizedConv2d(ch[i], ch[i], 3), EqualizedConv2d(ch[i], ch[i - 1], 3)]))
        self.dense = EqualizedLinear(ch[0] * 16, ch[0])  # the paper's 4x4 conv with no padding
        self.out = EqualizedLinear(ch[0], 1, gain=1.0)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] != self.resolution:
            raise GankitError(f"PGGAN's D is at {self.resolution} px but was given {x.shape[-1]} px images; "
                              "resize real images to the phase's resolution.")
        h = _lrelu(self.rgb[self.level](x))  # (B, ch, R, R)
        for level in range(self.level, 0, -1):
            for conv in self.convs[level]:
                h = _lrelu(conv(h))
            h = F.avg_pool2d(h, 2)
            if level == self.level and self.alpha < 1:
                # The new block fades in against the old fromRGB on the downsampled image.
                old = _lrelu(self.rgb[level - 1](F.avg_pool2d(x, 2)))
                h = torch.lerp(old, h, self.alpha)
        h = _lrelu(self.convs[0][0](minibatch_stddev(h, self.mbstd_group)))  # (B, ch0, 4, 4)
        h = _lrelu(self.dense(h.flatten(1)))
        return self.out(h).flatten()  # (B,) critic values


@register_model("pggan")
def build_pggan(cfg, data_shape: tuple[int, ...], num_classes: int = 0) -> Nets:
    require_images("pggan", data_shape)
    channels, resolution, _ = data_shape
    check_resolution(resolution)
    return Nets(
        G=PGGANGenerator(cfg.z_dim, channels, resolution, cfg.width, cfg.max_width),
        D=PGGANDiscriminator(channels, resolution, cfg.width, cfg.max_width),
    )
