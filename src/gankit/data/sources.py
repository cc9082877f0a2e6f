"""Shared steps of every dataset read from disk: fill the HDF5 cache, report, load.

Two kinds of source feed the cache: arrays a loader such as torchvision's CIFAR10 returns
(`cache_arrays`), and folders of image files (`cache_files`), decoded in parallel by DataLoader
workers. Either way the result is a cache file, opened in memory or as a stream by its size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankit.data.base import match_channels, resize_uint8
from gankit.data.cache import CacheRequest, CacheWriter, ensure_cache, progress, read_manifest
from gankit.data.cache import read_sources as read_cached_sources  # noqa: F401 - for the dataset files
from gankit.data.images import Preprocess, decoded_chunks, fingerprint, first_paths, warn
from gankit.data.stream import default_workers, open_cached
from gankit.errors import GankitError

ARRAY_RESIZE = "bilinear-antialias"  # resize_uint8's filter, recorded in the cache key


def cache_dir(cfg) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.root) / "cache"


def limit(files: list, cfg) -> list:
    """The first `data.max_images` of a sorted list (all when 0): a fixed, reproducible subset."""
    return files[:cfg.max_images] if cfg.max_images else files


def cache_arrays(cfg, dataset: str, source_root: Path, source_files: list[Path], load) -> Path:
    """Cache what `load()` returns: ((N, C, H, W) uint8 tensor, (N,) labels or None) at native size."""
    request = CacheRequest(
        dataset=dataset, split=cfg.split, resolution=cfg.resolution, channels=cfg.channels,
        preprocessing={"resize": ARRAY_RESIZE, "max_images": cfg.max_images},
        source_root=source_root, source_files=fingerprint(source_files, source_root),
        cache_dir=cache_dir(cfg),
    )

    def produce(writer: CacheWriter) -> None:
        images, labels = load()
        keep = cfg.max_images or len(images)
        images, labels = images[:keep], labels[:keep] if labels is not None else None
        bar = progress(len(images), dataset)
        writer.capacity = len(images)
        for start in range(0, len(images), 4096):  # chunks bound the float copy resize makes
            part = match_channels(resize_uint8(images[start:start + 4096], cfg.resolution), cfg.channels)
            writer.append(part.numpy(), None if labels is None else labels[start:start + 4096].numpy(),
                          [str(i) for i in range(start, start + len(part))])
            bar.update(len(part))
        bar.close()

    return ensure_cache(request, produce, capacity=0)


def cache_files(cfg, dataset: str, split: str, root: Path, files: list[Path], prep: Preprocess) -> Path:
    """Cache image files (already listed and sorted); sources are paths relative to `root`."""
    request = CacheRequest(
        dataset=dataset, split=split, resolution=prep.resolution, channels=prep.channels,
        preprocessing={**prep.key(), "max_images": cfg.max_images},
        source_root=root, source_files=fingerprint(files, root), cache_dir=cache_dir(cfg),
    )

    def produce(writer: CacheWriter) -> None:
        bar = progress(len(files), f"{dataset} from {root}")
        for indices, arrays, upscaled in decoded_chunks(files, prep, default_workers(cfg.num_workers)):
            names = [str(files[i].relative_to(root)) for i in indices]
            writer.manifest["skipped"] += [n for n, a in zip(names, arrays, strict=True) if a is None]
            writer.manifest["upscaled"] += [n for n, a, u in zip(names, arrays, upscaled, strict=True)
                                            if a is not None and u]
            good = [(n, a) for n, a in zip(names, arrays, strict=True) if a is not None]
            if good:
                writer.append(np.stack([a for _, a in good]), None, [n for n, _ in good])
            bar.update(len(indices))
        bar.close()
        if writer.count == 0:
            raise GankitError(
                f"none of the {len(files)} image files under {root} could be read (first: "
                f"{first_paths(writer.manifest['skipped'])}); check that they are images PIL can open."
            )

    return ensure_cache(request, produce, capacity=len(files))


def report(path: Path, where: Path, resolution: int) -> None:
    """The build's skips and upscales, as one warning each, on every run that uses the cache."""
    manifest = read_manifest(path)
    skipped, upscaled = manifest["skipped"], manifest["upscaled"]
    if skipped:
        warn(f"skipped {len(skipped)} unreadable (corrupted or truncated) image files under {where}: "
             f"{first_paths(skipped)}.")
    if upscaled:
        warn(f"upscaled {len(upscaled)} images under {where} that are smaller than {resolution} px "
             f"(first: {first_paths(upscaled)}); they will look blurry.")


def load(cfg, path: Path, labels: torch.Tensor | None, num_classes: int):
    """ImageTensors when the cache fits `data.in_memory_budget_mb`, else StreamedImages."""
    return open_cached(path, cfg.in_memory_budget_mb, cfg.num_workers, labels, num_classes)
