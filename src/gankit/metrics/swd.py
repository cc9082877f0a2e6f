"""Sliced Wasserstein distance (Karras et al. 2018, PGGAN, sec. 5 and appendix D), the paper's own
metric: how close the local image statistics of generated and real images are, scale by scale.

Protocol, as in the paper:
- each image is split into a Laplacian pyramid (5x5 binomial filter, 2x down- and upsampling,
  mirrored edges), from the full resolution down to 16 px: one level per resolution, the last
  being the low-pass 16 px image itself (a single level for images under 32 px);
- 128 random 7x7 neighbourhoods per image per level are descriptors of 7*7*C numbers, each
  channel normalised by the mean and std of its set's descriptors;
- per level, the 1-D Wasserstein distance along 4 x 128 random unit directions (sorted
  projections, mean absolute difference), averaged; reported x 10^3 per level, and the average.
Images pass through uint8 first (what a PNG would hold), so real and generated take one path.
Random positions and directions come from numpy's RandomState(eval.seed), level by level: the
positions (x then y), then the 4 x 128 directions, so a score is repeatable. One deviation from
the authors' code, which draws each set's positions separately: both sets share one draw of
positions. Each set's descriptors have the same distribution either way, but SWD(A, A) is then
exactly 0, and two runs' scores do not differ by sampling noise in where the patches were cut.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.metrics import Metric, register_metric
from gankit.metrics.backbone import to_uint8

NEIGHBOURHOOD = 7  # descriptor side in pixels
PER_IMAGE = 128  # descriptors per image per level
REPEATS, DIRECTIONS = 4, 128  # 4 x 128 random projections
MIN_RESOLUTION = 16  # the coarsest pyramid level
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
KERNEL = torch.outer(_BINOMIAL, _BINOMIAL) / 256  # 5x5 Gaussian of cv2.pyrDown


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    c = x.shape[1]
    weight = (KERNEL * gain).to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), weight, groups=c)


def pyramid_down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def pyramid_up(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, 2 * h, 2 * w)
    out[:, :, ::2, ::2] = x
    return _blur(out, gain=4.0)  # 4x: three quarters of the upsampled pixels were zeros


def num_levels(resolution: int) -> int:
    levels = 1
    while resolution // 2 >= MIN_RESOLUTION and resolution % 2 == 0:
        resolution //= 2
        levels += 1
    return levels


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """(N, C, H, W) -> [band at H, band at H/2, ..., low-pass at H / 2**(levels-1)]."""
    bands = [images]
    for _ in range(levels - 1):
        low = pyramid_down(bands[-1])
        bands[-1] = bands[-1] - pyramid_up(low)
        bands.append(low)
    return bands


def neighbourhood_positions(shape: torch.Size, rng: np.random.RandomState) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) centres of 128 random 7x7 neighbourhoods per image, image after image."""
    n, _, h, w = shape
    half = NEIGHBOURHOOD // 2
    x = torch.from_numpy(rng.randint(half, w - half, size=n * PER_IMAGE))
    y = torch.from_numpy(rng.randint(half, h - half, size=n * PER_IMAGE))
    return x, y


def descriptors(band: torch.Tensor, positions: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(N, C, H, W) -> (N * 128, 7*7*C) neighbourhoods at `positions`, each channel standardised."""
    n, c, h, w = band.shape
    x, y = positions
    half = NEIGHBOURHOOD // 2
    # All 7x7 windows as columns, then one gather: much faster than fancy indexing per pixel.
    windows = F.unfold(band, NEIGHBOURHOOD).view(n, c * NEIGHBOURHOOD**2, -1)  # (N, C*49, L)
    image = torch.arange(n * PER_IMAGE) // PER_IMAGE
    index = (y - half) * (w - 2 * half) + (x - half)
    patches = windows[image, :, index].view(-1, c, NEIGHBOURHOOD, NEIGHBOURHOOD)  # (N*128, C, 7, 7)
    patches = patches - patches.mean(dim=(0, 2, 3), keepdim=True)
    patches = patches / patches.std(dim=(0, 2, 3), keepdim=True, correction=0)
    return patches.flatten(1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, rng: np.random.RandomState) -> float:
    """Mean over 4 x 128 random unit directions of the 1-D Wasserstein-1 distance of the projections."""
    results = []
    for _ in range(REPEATS):
        directions = torch.from_numpy(rng.standard_normal((a.shape[1], DIRECTIONS))).to(a)
        directions = directions / directions.norm(dim=0, keepdim=True)
        pa, _ = torch.sort(a @ directions, dim=0)
        pb, _ = torch.sort(b @ directions, dim=0)
        results.append(float((pa - pb).abs().mean()))
    return float(np.mean(results))


def sliced_wasserstein_distance(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """{"swd_<res>": x10^3 per pyramid level, "swd": their mean} for equal-sized (N, C, H, W) sets in [-1, 1]."""
    if real.shape != fake.shape:
        raise GankitError(f"SWD compares equal sets of images, not {tuple(real.shape)} and {tuple(fake.shape)}.")
    if real.shape[-1] < NEIGHBOURHOOD or real.shape[-2] < NEIGHBOURHOOD:
        raise GankitError(f"SWD takes 7x7 neighbourhoods, so images must be at least 7 px, not {real.shape[-1]}.")
    rng = np.random.RandomState(seed)
    levels = num_levels(real.shape[-1])
    scores = {}
    for real_band, fake_band in zip(*(laplacian_pyramid(to_uint8(x).double(), levels) for x in (real, fake)),
                                    strict=True):
        positions = neighbourhood_positions(real_band.shape, rng)
        a, b = descriptors(real_band, positions), descriptors(fake_band, positions)
        scores[f"swd_{real_band.shape[-1]}"] = 1e3 * sliced_wasserstein(a, b, rng)
    return {**scores, "swd": float(np.mean(list(scores.values())))}


class SlicedWasserstein(Metric):
    headline = "swd"
    lower_is_better = {"swd": True} | {f"swd_{2**i}": True for i in range(3, 11)}  # levels 8..1024 px

    def __call__(self, ev) -> dict[str, float]:
        from gankit.data import build_dataset
        from gankit.metrics.evaluate import real_images

        ev.require_images("swd")
        dataset = ev.run_dataset()
        if ev.eval_cfg.reference_split != ev.data.split:
            dataset = build_dataset(replace(ev.data, split=ev.eval_cfg.reference_split))
        real = real_images(dataset, ev.n)
        n = min(len(real), ev.n)
        fake = ev.fake[:n]
        if fake.shape[-1] != real.shape[-1]:
            # A growing G (PGGAN) below the data resolution is compared with reals at its own size.
            real = F.interpolate(real, size=fake.shape[-2:], mode="area")
        ev.used.update(n_reference=n, reference_split=ev.eval_cfg.reference_split, resize="area (to G's size)")
        self.n = n
        return sliced_wasserstein_distance(real[:n], fake, seed=ev.eval_cfg.seed)

    def details(self, ev) -> dict:
        return {"descriptors_per_image": PER_IMAGE, "neighbourhood": NEIGHBOURHOOD,
                "projections": f"{REPEATS}x{DIRECTIONS}", "min_resolution": MIN_RESOLUTION, "n_compared": self.n}


@register_metric("swd")
def build_swd() -> Metric:
    return SlicedWasserstein()
