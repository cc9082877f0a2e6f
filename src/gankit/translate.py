"""`gankit translate`: run a trained translation model (CycleGAN) over image files.

Each input is decoded and prepared exactly as the run's training images were (grey or RGB,
centred square crop, resize to `data.resolution`), translated by G_ema in one direction, and
written under the output folder with the input's file name, in the format its extension names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankit.checkpoint import load_generator, resolve_checkpoint
from gankit.data.base import to_unit_range
from gankit.data.images import IMAGE_EXTENSIONS, Preprocess, decode_image, list_image_files
from gankit.errors import GankitError
from gankit.utils import atomic_write

DIRECTIONS = ("AtoB", "BtoA")


def input_files(source: Path) -> list[Path]:
    source = Path(source)
    if source.is_dir():
        files = list_image_files(source)
        if not files:
            raise GankitError(f"{source} has no image files ({', '.join(IMAGE_EXTENSIONS)}); "
                              "pass a folder of images or one image file to --input.")
        return files
    if source.is_file():
        return [source]
    raise GankitError(f"--input {source} does not exist; pass a folder of images or one image file.")


def translate_files(run_dir: Path, source: Path, direction: str, out: Path, checkpoint: str = "latest",
                    batch_size: int = 16) -> list[Path]:
    """Translate every image under `source` (a folder, recursively, or one file) into `out`; the
    output keeps each file's path relative to `source`. Returns the written paths."""
    if direction not in DIRECTIONS:
        raise GankitError(f"--direction must be AtoB or BtoA, not '{direction}'.")
    loaded = load_generator(resolve_checkpoint(Path(run_dir), checkpoint), "G_ema")
    if not hasattr(loaded.objective, "translate"):
        raise GankitError(f"{run_dir} is a {loaded.cfg.model.name} run, which draws images from noise; "
                          "translate needs a translation model such as a cyclegan-* run.")
    files = input_files(source)
    root = Path(source) if Path(source).is_dir() else Path(source).parent
    out = Path(out)
    if out.resolve() == root.resolve():
        raise GankitError(f"--out {out} is the input folder, so the translations would overwrite the inputs; "
                          "choose another folder.")
    data = loaded.cfg.data
    prep = Preprocess(data.resolution, data.channels, data.center_crop)
    written = []
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        arrays = []
        for path in chunk:
            array, _ = decode_image(path, prep)
            if array is None:
                raise GankitError(f"{path} cannot be decoded as an image; remove it or replace it with a "
                                  "readable image file.")
            arrays.append(array)
        images = to_unit_range(torch.from_numpy(np.stack(arrays)))  # (n, C, R, R) in [-1, 1]
        translated = loaded.objective.translate(loaded.G, images, direction, loaded.device)
        for path, image in zip(chunk, translated, strict=True):
            target = out / path.relative_to(root)
            _save(image, target)
            written.append(target)
    return written


def _save(image: torch.Tensor, path: Path) -> None:
    """(C, H, W) in [-1, 1] -> an 8-bit image file in the format of `path`'s extension."""
    from PIL import Image

    array = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    picture = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    file_format = Image.registered_extensions()[path.suffix.lower()]
    atomic_write(path, lambda tmp: picture.save(tmp, format=file_format))
