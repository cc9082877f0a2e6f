"""Sample grids a person can read: a caption strip with step and kimg, one class per row.

A grid without its step is a picture nobody can place in a comparison a week later, and a
conditional grid whose classes wrap around the rows hides whether each class is learnt. So:
- every grid gets a strip under it with its caption (`step 1500 · 96.0 kimg`);
- a conditional model's grid puts class k on row k, labelled on the left, when there are few
  enough classes to read (MAX_CLASS_ROWS); more (Stacked MNIST's 1,000) fall back to a square.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

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


def grid_image(fake: torch.Tensor, labels: torch.Tensor | None = None, caption: str = "") -> Image.Image:
    """An RGB PIL image of (N, C, H, W) samples in [-1, 1], captioned, one class per row when labelled."""
    from torchvision.utils import make_grid

    fake = fake.detach().float().cpu().clamp(-1, 1)
    row_names: list[int] = []
    if labels is not None and 1 < len(labels.unique()) <= MAX_CLASS_ROWS:
        cells, row_names, cols = class_rows(fake, labels.cpu())
    elif labels is not None and len(labels.unique()) == 1:
        cells, cols = fake, max(1, math.ceil(math.sqrt(len(fake))))
        row_names = [int(labels[0])] * math.ceil(len(fake) / cols)
    else:
        cells, cols = fake, max(1, int(math.sqrt(len(fake))))
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
