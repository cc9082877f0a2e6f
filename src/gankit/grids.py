"""Pictures of samples a person can read: captioned image grids and 2-D scatter plots.

Below `training`, so that `sampling`, `translate` and `metrics` can draw them without importing
the training package.

A grid without its step is a picture nobody can place in a comparison a week later, and a
conditional grid whose classes wrap around the rows hides whether each class is learnt. So:
- every grid gets a strip under it with its caption (`step 1500 · 96.0 kimg`);
- a conditional model's grid puts class k on row k, labelled on the left, when there are few
  enough classes to read (MAX_CLASS_ROWS); more (Stacked MNIST's 1,000) fall back to a square.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

matplotlib.use("Agg")  # no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402

from gankit.utils import atomic_write  # noqa: E402

MAX_CLASS_ROWS = 32  # beyond this many classes, rows would be too many to read
PAD = 2  # pixels between cells
BLANK = 0.0  # value of an empty cell in G's [-1, 1] range: mid grey, unlike any digit's black or white


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def class_rows(fake: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, list[int], int]:
    """(cells (rows * cols, C, H, W), the class of each row, cols): class k's samples on row k."""
    classes = sorted(int(c) for c in labels.unique())
    per_class = [fake[labels == c] for c in classes]
    cols = max(len(s) for s in per_class)
    cells = []
    for samples in per_class:
        blanks = torch.full((cols - len(samples), *fake.shape[1:]), BLANK)
        cells.append(torch.cat([samples, blanks]))
    return torch.cat(cells), classes, cols


def grid_image(fake: torch.Tensor, labels: torch.Tensor | None = None, caption: str = "",
               nrow: int | None = None) -> Image.Image:
    """An RGB PIL image of (N, C, H, W) samples in [-1, 1], captioned, one class per row when labelled;
    unlabelled, `nrow` images a row (default: a square)."""
    from torchvision.utils import make_grid

    fake = fake.detach().float().cpu().clamp(-1, 1)
    row_names: list[int] = []
    if labels is not None and 1 < len(labels.unique()) <= MAX_CLASS_ROWS:
        cells, row_names, cols = class_rows(fake, labels.cpu())
    elif labels is not None and len(labels.unique()) == 1:
        cells, cols = fake, max(1, math.ceil(math.sqrt(len(fake))))
        row_names = [int(labels[0])] * math.ceil(len(fake) / cols)
    else:
        cells, cols = fake, nrow or max(1, int(math.sqrt(len(fake))))
    grid = make_grid((cells + 1) / 2, nrow=cols, padding=PAD, pad_value=1.0)  # (3, H, W) in [0, 1]
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    body = Image.fromarray(array).convert("RGB")

    cell = fake.shape[-1] + PAD
    font_size = max(9, min(14, cell // 2))
    font = _font(font_size)
    margin = font_size * 3 if row_names else 0
    strip = font_size + 8 if caption else 0
    width = max(body.width + margin, _text_width(caption, font) + 8 if caption else 0)
    out = Image.new("RGB", (width, body.height + strip), "white")
    out.paste(body, (margin, 0))
    draw = ImageDraw.Draw(out)
    for row, name in enumerate(row_names):
        draw.text((margin - 4, PAD + row * cell + (cell - PAD) / 2), str(name), fill="black", font=font, anchor="rm")
    if caption:
        draw.text((4, body.height + strip / 2), caption, fill="black", font=font, anchor="lm")
    return out


def _text_width(text: str, font: ImageFont.ImageFont) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - left)


def caption(step: int, images_seen: int) -> str:
    return f"step {step} \u00b7 {images_seen / 1000:.1f} kimg"


def save_samples(fake: torch.Tensor, path: Path, dataset, title: str = "", labels: torch.Tensor | None = None,
                 nrow: int | None = None) -> None:
    """A PNG of samples: a captioned image grid (a class per row when labelled, else `nrow` a row),
    or a scatter over real points for 2-D data."""
    if fake.dim() == 2:
        real, _ = dataset.sample(4096, torch.Generator().manual_seed(0))  # the same real points in every frame
        scatter_points(fake.numpy(), real.numpy(), path, title)
        return
    image = grid_image(fake, labels, title, nrow)
    atomic_write(path, lambda tmp: image.save(tmp, format="png"))


def real_extent(real) -> tuple[float, float, float, float]:
    """Square axis limits around the real points, 15% beyond their extent: the frame of every scatter
    of a run, so that frames compare (the real sample is drawn from a fixed seed, hence the same)."""
    lo, hi = real.min(0), real.max(0)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.15 + 1e-6
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def scatter_figure(fake, real, title: str = ""):
    """2-D samples drawn over the real ones: the picture of mode coverage.

    Real points go underneath in black, generated ones on top in translucent red, so that both
    a mode with no samples (black showing) and samples piling up (solid red) can be seen. The
    axes come from the real data alone and stay fixed from frame to frame; generated points
    beyond them are counted in the title rather than allowed to rescale the frame. The legend
    sits under the axes, where it can never cover a mode.
    """
    x0, x1, y0, y1 = real_extent(real)
    fig, ax = plt.subplots(figsize=(5, 5.4))
    ax.scatter(real[:, 0], real[:, 1], s=1, c="black", label="real", zorder=1)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:red", alpha=0.3, linewidths=0, label="generated", zorder=2)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    outside = int(((fake[:, 0] < x0) | (fake[:, 0] > x1) | (fake[:, 1] < y0) | (fake[:, 1] > y1)).sum())
    note = f"\n{outside} of {len(fake)} generated points lie outside the frame" if outside else ""
    ax.set_title(title + note, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=2, markerscale=4, frameon=False)
    fig.tight_layout()
    return fig


def scatter_points(fake, real, out_path: Path, title: str = "") -> None:
    fig = scatter_figure(fake, real, title)
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
