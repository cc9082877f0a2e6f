"""Any folder of images, searched recursively: anime faces, a photo collection, LSUN exports...

Every image file under `data.path` is used, in sorted path order (`data.max_images` keeps the
first N). Non-image files are ignored; corrupted or truncated images are skipped with one
warning; greyscale, RGBA, palette and 16-bit images are converted to `data.channels`; each image
is centre-cropped to a square (`data.center_crop`, default the largest) and resized to
`data.resolution`, upscaling small ones with a warning that counts them.

With `data.class_labels=true`, each top-level subfolder is a class, numbered in sorted order as
torchvision's ImageFolder does (`cat/`, `dog/` -> 0, 1), and every image must be in one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.data import register_dataset, sources
from gankit.data.images import IMAGE_EXTENSIONS, Preprocess, first_paths, list_image_files
from gankit.errors import GankitError


def cache_folder(cfg, folder: Path, dataset: str, split: str) -> Path:
    """Cache every image under `folder` at the configured preprocessing; return the cache path."""
    if not folder.is_dir():
        raise GankitError(f"{folder} is not a folder; set data.path to a folder of images.")
    files = list_image_files(folder)
    if not files:
        raise GankitError(f"{folder} has no image files ({', '.join(IMAGE_EXTENSIONS)}) in it or its "
                          "subfolders; point data.path at a folder of images.")
    prep = Preprocess(cfg.resolution, cfg.channels, cfg.center_crop)
    path = sources.cache_files(cfg, dataset, split, folder, sources.limit(files, cfg), prep)
    sources.report(path, folder, cfg.resolution)
    return path


def class_labels(names: list[str], folder: Path) -> tuple[torch.Tensor, list[str]]:
    """Labels from each path's top-level folder, and the sorted class names."""
    loose = [n for n in names if len(Path(n).parts) < 2]
    if loose:
        raise GankitError(f"{folder} has images outside any class subfolder ({first_paths(loose)}), so "
                          "data.class_labels=true cannot label them; move them into one, or drop the setting.")
    tops = [Path(n).parts[0] for n in names]
    classes = sorted(set(tops))
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index[t] for t in tops], dtype=torch.long), classes


def folder_path(cfg) -> Path:
    if not cfg.path:
        raise GankitError(f"data.name={cfg.name} reads the folder named by data.path; add data.path=FOLDER.")
    return Path(cfg.path).expanduser()


@register_dataset("imagefolder")
def build_imagefolder(cfg):
    folder = folder_path(cfg)
    path = cache_folder(cfg, folder, "imagefolder", "all")
    if not cfg.class_labels:
        return sources.load(cfg, path, None, num_classes=0)
    labels, classes = class_labels(sources.read_cached_sources(path), folder)
    dataset = sources.load(cfg, path, labels, num_classes=len(classes))
    dataset.classes = classes
    return dataset
