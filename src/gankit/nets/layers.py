"""Pieces shared by several architectures: init schemes, spectral norm, ResNet blocks,
conditional BatchNorm, self-attention and PacGAN packing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gankit.errors import GankitError

WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN weight init (Radford et al. 2016, sec. 4): conv/linear weights ~ N(0, 0.02).

    BatchNorm scales start at N(1, 0.02) so the layers begin close to the identity.
    """
    for m in module.modules():
        if isinstance(m, WEIGHTED):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _init_weighted(module: nn.Module, init_weight) -> None:
    """init_weight(weight) on every conv/linear layer, in module order; biases start at 0."""
    for m in module.modules():
        if isinstance(m, WEIGHTED):
            init_weight(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def orthogonal_init(module: nn.Module) -> None:
    """Orthogonal weights (Saxe et al. 2014), the init of SNGAN's and BigGAN's ResNets."""
    _init_weighted(module, nn.init.orthogonal_)


def kaiming_init(module: nn.Module) -> None:
    """He et al. 2015 normal init for ReLU-family layers (fan-in, gain for slope 0.2)."""
    _init_weighted(module, lambda weight: nn.init.kaiming_normal_(weight, a=0.2, nonlinearity="leaky_relu"))


INITS = {"dcgan": dcgan_init, "orthogonal": orthogonal_init, "kaiming": kaiming_init}


def apply_spectral_norm(module: nn.Module, embeddings: bool = False) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every conv/linear weight in `module`.

    One power iteration per forward pass in training mode, via torch's parametrization, so
    the normalised weight is what `state_dict` round-trips (with its u/v vectors as buffers).
    The projection discriminator also normalises its class embedding (`embeddings=True`).
    """
    kinds = WEIGHTED + ((nn.Embedding,) if embeddings else ())
    for m in list(module.modules()):
        if isinstance(m, kinds) and not hasattr(m, "parametrizations"):
            spectral_norm(m)
    return module


def batchnorm2d(channels: int, enabled: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if enabled else nn.Identity()


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are looked up per class (de Vries et al. 2017), as in the
    generator of SNGAN-projection (Miyato & Koyama 2018). With no classes it is plain BatchNorm."""

    def __init__(self, channels: int, num_classes: int = 0, enabled: bool = True):
        super().__init__()
        self.num_classes = num_classes
        if not enabled:
            self.bn: nn.Module = nn.Identity()
        elif num_classes:
            self.bn = nn.BatchNorm2d(channels, affine=False)
            self.gamma = nn.Embedding(num_classes, channels)
            self.beta = nn.Embedding(num_classes, channels)
            # Close to the identity for every class, but not equal across classes: as DCGAN's
            # N(1, 0.02) BatchNorm scales, so classes differ from the first step.
            nn.init.normal_(self.gamma.weight, 1.0, 0.02)
            nn.init.normal_(self.beta.weight, 0.0, 0.02)
        else:
            self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = self.bn(x)
        if self.num_classes and isinstance(self.bn, nn.BatchNorm2d):
            out = self.gamma(labels)[:, :, None, None] * out + self.beta(labels)[:, :, None, None]
        return out


class GBlock(nn.Module):
    """SNGAN generator ResBlock (Miyato et al. 2018, appendix B): BN-ReLU-up-conv3-BN-ReLU-conv3,
    with a nearest-upsampled 1x1 conv on the shortcut. (B, in, H, W) -> (B, out, 2H, 2W)."""

    def __init__(self, ch_in: int, ch_out: int, num_classes: int = 0, batchnorm: bool = True):
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(ch_in, num_classes, batchnorm)
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, 1, 1)
        self.bn2 = ConditionalBatchNorm2d(ch_out, num_classes, batchnorm)
        self.conv2 = nn.Conv2d(ch_out, ch_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(ch_in, ch_out, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, labels)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    """SNGAN discriminator ResBlock: ReLU-conv3-ReLU-conv3-avgpool, with a 1x1 conv (and pool)
    on the shortcut. The first block skips the leading ReLU, which would clip the raw image
    ("optimized block" of the authors' code). (B, in, H, W) -> (B, out, H/2, W/2) or same size."""

    def __init__(self, ch_in: int, ch_out: int, downsample: bool = True, first: bool = False):
        super().__init__()
        self.first, self.downsample = first, downsample
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(ch_out, ch_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(ch_in, ch_out, 1) if (ch_in != ch_out or downsample) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        skip = self.shortcut(x)  # a 1x1 conv commutes with average pooling, so one order serves all
        if self.downsample:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return h + skip


class SelfAttention(nn.Module):
    """Self-attention over feature-map positions (Zhang et al. 2019, SAGAN, sec. 3).

    Queries and keys are C/8-channel 1x1 projections, values C/2 (as in BigGAN's version), and
    the output is added back scaled by gamma, which starts at 0 so the block begins as the
    identity and the network learns how much non-local evidence to use.
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1, bias=False)
        self.key = nn.Conv2d(channels, inner, 1, bias=False)
        self.value = nn.Conv2d(channels, max(channels // 2, 1), 1, bias=False)
        self.out = nn.Conv2d(max(channels // 2, 1), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (B, C/8, N)
        k = self.key(x).flatten(2)  # (B, C/8, N)
        v = self.value(x).flatten(2)  # (B, C/2, N)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N): row i attends over j
        o = (v @ attn.transpose(1, 2)).view(b, -1, h, w)  # (B, C/2, H, W)
        return x + self.gamma * self.out(o)


def pack(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN packing (Lin et al. 2018): (B, C, ...) -> (B/m, m*C, ...), m samples per D input.

    Consecutive samples form a pack, so a pack is all real or all fake.
    """
    if x.shape[0] % m:
        raise GankitError(f"PacGAN packs {m} samples per D input, so train.batch_size must be a "
                          f"multiple of model.pack={m}, not {x.shape[0]}.")
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])
