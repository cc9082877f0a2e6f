"""CIFAR-10 (Krizhevsky 2009), read by torchvision's loader from the python version's pickled batches.

The layout is torchvision's: `DATA_ROOT/cifar-10-batches-py/` with `data_batch_1` .. `data_batch_5`
(train, 50,000 images), `test_batch` (10,000) and `batches.meta`. torchvision checks each file's
MD5 before reading it, so a damaged download is refused instead of trained on. The published
archive `cifar-10-python.tar.gz` left in DATA_ROOT is unpacked on first use.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import torch

from gankit.data import register_dataset, sources
from gankit.data.base import fetch_hint
from gankit.data.stream import read_cached_labels
from gankit.errors import GankitError

CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch", "batches.meta")


@register_dataset("cifar10")
def build_cifar10(cfg):
    from torchvision.datasets import CIFAR10

    root = Path(cfg.root)
    folder = root / CIFAR10.base_folder
    archive = root / CIFAR10.filename
    if not folder.is_dir() and archive.is_file():
        with tarfile.open(archive) as tar:  # torchvision would only unpack it with download=True
            tar.extractall(root, filter="data")
    train = cfg.split == "train"

    names = ([f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]) + ["batches.meta"]

    def read():
        try:
            ds = CIFAR10(str(root), train=train, download=cfg.download)
        except (RuntimeError, OSError):
            how = fetch_hint(cfg.download)
            raise GankitError(
                f"CIFAR-10 is not in {folder} (or fails torchvision's MD5 check): put {', '.join(CIFAR10_FILES)} "
                f"from cifar-10-python.tar.gz there (or the .tar.gz itself in {root}), or {how}."
            ) from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32) uint8
        return images, torch.tensor(ds.targets, dtype=torch.long)

    if cfg.download or not all((folder / n).is_file() for n in names):
        read()  # downloads when asked; otherwise raises the missing-files error
    path = sources.cache_arrays(cfg, "cifar10", folder, [folder / n for n in names], read)
    return sources.load(cfg, path, read_cached_labels(path), num_classes=10)
