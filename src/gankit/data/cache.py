"""The HDF5 cache: every image dataset read from disk is decoded and resized once, then read back.

The first use of a dataset at a given resolution and preprocessing writes
`CACHE_DIR/<name>-<split>-<R>px-<C>ch-<digest>.h5` (written to a temp file and renamed into
place, so a crash never leaves half a cache). The file holds:

- `images`: (N, C, R, R) uint8, in chunks of about 16 KB (one image from 64 px RGB up), so a
  random read touches little more than its own image;
- `labels`: (N,) int64 when the source has labels;
- `sources`: (N,) the file (or index) each image came from, for labels derived from paths;
- attributes `key` (see below), `manifest` (JSON: what was skipped or upscaled), `version`.

The file name depends on the dataset, split and preprocessing, so caches for several
resolutions live side by side. The `key` inside also covers every source file's name, size and
mtime: when it no longer matches, the cache is stale and is rebuilt, with a warning. A cache
h5py cannot read, or whose shape is wrong, is corrupted and is rebuilt the same way.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gankit.data.images import warn
from gankit.utils import atomic_write

CACHE_VERSION = 1  # bump when the file layout or the decoding changes
used: list[Path] = []  # every cache ensure_cache returned in this process, for `gankit data prepare`


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class CacheRequest:
    dataset: str  # registry name, e.g. "celeba"
    split: str  # train | test | all (image folders have no split)
    resolution: int  # R: images are stored (N, C, R, R)
    channels: int  # C
    preprocessing: dict  # every other setting that changes the stored pixels (crop, filter...)
    source_root: Path  # where the source files are; part of the name, so two folders never share a cache
    source_files: list[tuple[str, int, int]]  # (relative path, size, mtime ns) per source file
    cache_dir: Path

    @property
    def path(self) -> Path:
        identity = _digest([self.dataset, self.split, self.resolution, self.channels, self.preprocessing,
                            str(Path(self.source_root).resolve()), CACHE_VERSION])
        return Path(self.cache_dir) / (
            f"{self.dataset}-{self.split}-{self.resolution}px-{self.channels}ch-{identity[:10]}.h5")

    @property
    def key(self) -> str:
        return _digest([self.path.name, self.source_files, CACHE_VERSION])


@dataclass
class CacheWriter:
    """What a producer hands its decoded images to; it appends them to the HDF5 file."""

    h5: object
    request: CacheRequest
    capacity: int
    count: int = 0
    manifest: dict = field(default_factory=lambda: {"skipped": [], "upscaled": []})

    def append(self, images: np.ndarray, labels: np.ndarray | None, sources: list[str]) -> None:
        """images (n, C, R, R) uint8; labels (n,) or None; sources: n names."""
        import h5py

        n = len(images)
        if n == 0:
            return
        if "images" not in self.h5:
            shape = (self.request.channels, self.request.resolution, self.request.resolution)
            # About 16 KB per chunk: one 64 px RGB image, or a few small ones. A random read then
            # touches little more than its image, and reading the whole file is not 60k tiny reads.
            rows = max(1, 16384 // int(np.prod(shape)))
            self.h5.create_dataset("images", shape=(self.capacity, *shape), maxshape=(None, *shape),
                                   chunks=(min(rows, max(self.capacity, 1)), *shape), dtype=np.uint8)
            self.h5.create_dataset("sources", shape=(self.capacity,), maxshape=(None,),
                                   dtype=h5py.string_dtype())
            if labels is not None:
                self.h5.create_dataset("labels", shape=(self.capacity,), maxshape=(None,), dtype=np.int64)
        self.h5["images"][self.count:self.count + n] = images
        self.h5["sources"][self.count:self.count + n] = sources
        if labels is not None:
            self.h5["labels"][self.count:self.count + n] = labels
        self.count += n

    def finish(self) -> None:
        for name in ("images", "sources", "labels"):
            if name in self.h5:
                self.h5[name].resize(self.count, axis=0)
        self.h5.attrs["key"] = self.request.key
        self.h5.attrs["version"] = CACHE_VERSION
        self.h5.attrs["manifest"] = json.dumps(self.manifest)


def _problem(path: Path, request: CacheRequest) -> str | None:
    """None when the cache at `path` is valid for `request`, else why it is not."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("key") != request.key:
                return "stale (its source files or settings changed)"
            images = f["images"]
            expected = (request.channels, request.resolution, request.resolution)
            if images.dtype != np.uint8 or images.shape[1:] != expected or len(images) == 0:
                return f"corrupted (images are {images.shape} {images.dtype}, expected (N, *{expected}) uint8)"
            if len(f["sources"]) != len(images) or ("labels" in f and len(f["labels"]) != len(images)):
                return "corrupted (images, labels and sources differ in length)"
            images[0], images[-1]  # noqa: B018 - reading both ends catches a truncated file
            json.loads(f.attrs["manifest"])
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError... on a damaged file
        return f"corrupted ({type(exc).__name__}: {str(exc)[:80]})"
    return None


def ensure_cache(request: CacheRequest, produce: Callable[[CacheWriter], None], capacity: int) -> Path:
    """The cache file for `request`, built by `produce(writer)` unless a valid one exists."""
    import h5py

    path = request.path
    if path.exists():
        problem = _problem(path, request)
        if problem is None:
            used.append(path)
            return path
        warn(f"HDF5 cache {path} is {problem}; rebuilding it.")

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as h5:
            writer = CacheWriter(h5, request, capacity)
            produce(writer)
            writer.finish()

    print(f"building HDF5 cache {path} ({request.dataset}, {request.resolution} px)", file=sys.stderr)
    atomic_write(path, write)
    used.append(path)
    return path


def read_manifest(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["manifest"])


def read_sources(path: Path) -> list[str]:
    import h5py

    with h5py.File(path, "r") as f:
        return [s.decode() if isinstance(s, bytes) else s for s in f["sources"][:]]


def progress(total: int, what: str):
    """A tqdm bar on stderr for cache builds (they can take minutes on a large folder)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"caching {what}", unit="img", file=sys.stderr, dynamic_ncols=True)
