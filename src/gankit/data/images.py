"""Reading image files as researchers keep them: nested folders of mixed, sometimes broken, files.

One image file becomes one (C, R, R) uint8 array: EXIF orientation applied, the mode (grey,
RGBA, palette, 16-bit, CMYK...) converted to the configured channels, a centred square cropped,
then resized with PIL's bicubic filter (antialiased when it shrinks). A file PIL cannot decode,
including a truncated JPEG, is reported rather than raised, so the caller can skip it and say so
once instead of crashing mid-epoch.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Decoded by PIL; anything else in the folder (captions, .DS_Store, our own .h5) is ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
RESIZE_FILTER = "bicubic"  # recorded in every cache key: a change of filter changes the pixels
SHOW_PATHS = 3  # paths quoted in a warning; the count covers the rest


class DataWarning(UserWarning):
    """Something in the data was skipped or changed; training goes on."""


def warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


def first_paths(paths: list[str]) -> str:
    shown = ", ".join(paths[:SHOW_PATHS])
    return shown + (f" and {len(paths) - SHOW_PATHS} more" if len(paths) > SHOW_PATHS else "")


def list_image_files(folder: Path) -> list[Path]:
    """Every image file under `folder`, recursively, sorted; hidden files and folders are skipped."""
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(parent) / f for f in files
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def fingerprint(files: list[Path], root: Path) -> list[tuple[str, int, int]]:
    """(path relative to root, size in bytes, mtime in ns) per file: what the cache key covers."""
    out = []
    for path in files:
        stat = path.stat()
        out.append((os.path.relpath(path, root), stat.st_size, stat.st_mtime_ns))
    return out


@dataclass(frozen=True)
class Preprocess:
    """How a source image becomes a training image; all of it goes into the cache key."""

    resolution: int  # output side in pixels
    channels: int  # 1 grey (ITU-R 601 luma), 3 RGB
    center_crop: int | None  # side of the centred square cut before resizing; None = largest square

    def key(self) -> dict:
        return {"resolution": self.resolution, "channels": self.channels,
                "center_crop": self.center_crop, "filter": RESIZE_FILTER, "alpha": "over-white"}


def _to_rgb_or_grey(image):
    """Any PIL mode -> 'RGB' or 'L', with 16-bit scaled (not clipped) and alpha over white."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        # PIL's convert('L') clips 16-bit values at 255, turning most of the image white;
        # scale the full 0..65535 range instead.
        wide = np.asarray(image).astype(np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).clip(0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        # Transparent pixels keep arbitrary colour values; compositing over white makes them
        # what a viewer shows instead.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("L", "RGB"):
        return image
    return image.convert("RGB")  # 1, CMYK, YCbCr, F, ...


def decode_image(path: Path, prep: Preprocess) -> tuple[np.ndarray | None, bool]:
    """(C, R, R) uint8 array and whether it was upscaled; (None, False) when unreadable."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            opened.load()  # decodes now: a truncated or corrupted file raises here, not later
            image = _to_rgb_or_grey(ImageOps.exif_transpose(opened))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None, False
    image = image.convert("L" if prep.channels == 1 else "RGB")
    width, height = image.size
    side = min(width, height, prep.center_crop or min(width, height))
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    upscaled = side < prep.resolution
    if side != prep.resolution:
        image = image.resize((prep.resolution, prep.resolution), Image.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return np.ascontiguousarray(array), upscaled  # (C, R, R)


class ImageFiles:
    """A list of files decoded on demand: torch DataLoader workers decode them in parallel."""

    def __init__(self, files: list[Path], prep: Preprocess):
        self.files, self.prep = files, prep

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, bool]:
        array, upscaled = decode_image(self.files[index], self.prep)
        return index, array, upscaled


def decoded_chunks(files: list[Path], prep: Preprocess, num_workers: int, chunk: int = 64):
    """Yield (indices, arrays or None, upscaled flags) for consecutive chunks of `files`, in order."""
    import torch
    from torch.utils.data import DataLoader

    # A DataLoader draws its workers' base seed from the global RNG unless given a generator;
    # a private one keeps a run's weights independent of whether the cache had to be built.
    loader = DataLoader(ImageFiles(files, prep), batch_size=chunk, shuffle=False,
                        num_workers=num_workers, collate_fn=_as_columns, generator=torch.Generator())
    yield from loader


def _as_columns(items):
    indices, arrays, upscaled = zip(*items, strict=True)
    return list(indices), list(arrays), list(upscaled)
