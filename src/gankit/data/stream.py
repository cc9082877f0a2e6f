"""Datasets too large for memory: batches stream from the HDF5 cache through a torch DataLoader.

The order of batches is a pure function of (seed, epoch, images already consumed in it): epoch e
is the permutation drawn from numpy's SeedSequence([seed, e]). The loader's state is that pair,
so a checkpoint taken while workers are prefetching still resumes on the exact next batch.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankit.data.base import ImageTensors, require_batch, to_unit_range
from gankit.ranks import SINGLE, Ranks


def default_workers(requested: int) -> int:
    if requested >= 0:
        return requested
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([seed, epoch])).permutation(n)


class EpochBatchSampler:
    """Endless batches of indices, epoch after epoch, from `start` = (epoch, images consumed in it).

    Each epoch drops its ragged tail, so every batch has the same size, as BatchNorm prefers.
    Under several processes each yields only its rows of the global batch, so a rank reads
    from disk only the images it trains on.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: tuple[int, int] = (0, 0),
                 ranks: Ranks = SINGLE):
        self.n, self.batch_size, self.seed, self.start, self.ranks = n, batch_size, seed, start, ranks

    def __iter__(self):
        epoch, position = self.start
        while True:
            order = epoch_order(self.n, self.seed, epoch)
            while position + self.batch_size <= self.n:
                yield self.ranks.take(order[position:position + self.batch_size]).tolist()
                position += self.batch_size
            epoch, position = epoch + 1, 0


class H5Images(torch.utils.data.Dataset):
    """Rows of the cache's `images`; each worker opens the file itself (h5py handles do not fork)."""

    def __init__(self, path: Path, labels: torch.Tensor | None):
        self.path, self.labels, self._file = Path(path), labels, None

    def __len__(self) -> int:
        import h5py

        with h5py.File(self.path, "r") as f:
            return len(f["images"])

    def __getitems__(self, indices: list[int]):
        import h5py

        if self._file is None:
            self._file = h5py.File(self.path, "r")
        images = self._file["images"]
        # One read per row: h5py's fancy indexing (images[sorted_list]) builds a point selection
        # that is 20x slower here (65 ms against 3 ms for 64 rows of 28x28).
        rows = np.stack([images[i] for i in indices])
        labels = self.labels[np.asarray(indices)] if self.labels is not None else None
        return torch.from_numpy(rows), labels  # (B, C, H, W) uint8, (B,) or None


def _whole_batch(batch):
    return batch  # __getitems__ already returns a collated batch


@dataclass
class StreamedImages:
    """An image dataset left on disk, in its HDF5 cache, with its labels in memory."""

    path: Path
    labels: torch.Tensor | None  # (N,) int64 or None
    num_classes: int
    count: int
    image_shape: tuple[int, int, int]
    num_workers: int = -1  # -1 = min(8, CPUs - 1)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.image_shape

    def __len__(self) -> int:
        return self.count

    def read(self, indices) -> torch.Tensor:
        """(len(indices), C, H, W) uint8, for tests and inspection."""
        images, _ = H5Images(self.path, None).__getitems__(list(indices))
        return images

    def loader(self, batch_size: int, seed: int, device: torch.device, ranks: Ranks = SINGLE) -> StreamLoader:
        return StreamLoader(self, batch_size, seed, device, ranks)


def _ignore_stop_signals(worker_id: int) -> None:
    """Ctrl-C and a scheduler's SIGTERM reach the whole process group. A worker that died of them
    would fail the step the main process is finishing before its graceful stop; the main
    process ends its workers itself (and they exit when it dies)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP):  # gankit.training.stop's
        signal.signal(signum, signal.SIG_IGN)


class StreamLoader:
    """`next()` -> ((B, C, H, W) float in [-1, 1] on `device`, labels or None)."""

    def __init__(self, data: StreamedImages, batch_size: int, seed: int, device: torch.device,
                 ranks: Ranks = SINGLE):
        require_batch(len(data), batch_size)
        ranks.rows(batch_size)
        self.ranks = ranks
        self.data, self.batch_size, self.seed, self.device = data, batch_size, seed, torch.device(device)
        # The whole position, in images, so it stays exact when the batch size changes (PGGAN).
        self.epoch, self.position = 0, 0
        self._batches, self._batch_size = None, batch_size  # the prefetching iterator and its batch size

    def _start(self, batch_size: int) -> None:
        workers = default_workers(self.data.num_workers)
        sampler = EpochBatchSampler(len(self.data), batch_size, self.seed, (self.epoch, self.position), self.ranks)
        loader = torch.utils.data.DataLoader(
            H5Images(self.data.path, self.data.labels), batch_sampler=sampler, collate_fn=_whole_batch,
            num_workers=workers, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None, persistent_workers=False,
            # Its own generator: drawing the workers' seed from the global RNG would make the
            # global stream depend on when the iterator was (re)started, breaking exact resume.
            generator=torch.Generator().manual_seed(self.seed),
            worker_init_fn=_ignore_stop_signals,
        )
        self._batches, self._batch_size = iter(loader), batch_size

    def next(self, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size = batch_size or self.batch_size
        if self._batches is None or batch_size != self._batch_size:
            require_batch(len(self.data), batch_size)
            self._start(batch_size)  # batches prefetched at the old size are dropped, not consumed
        images, labels = next(self._batches)
        if self.position + batch_size > len(self.data):
            self.epoch, self.position = self.epoch + 1, 0
        self.position += batch_size
        images = to_unit_range(images.to(self.device, non_blocking=True))
        labels = labels.to(self.device, non_blocking=True) if labels is not None else None
        return images, labels

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if "consumed" in state:  # checkpoints before per-call batch sizes counted whole batches
            epoch, batch = divmod(int(state["consumed"]), len(self.data) // self.batch_size)
            state = {**state, "epoch": epoch, "position": batch * self.batch_size}
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.seed = int(state["seed"])
        self._batches = None  # the prefetched batches belong to the old position


def open_cached(path: Path, budget_mb: int, num_workers: int, labels: torch.Tensor | None,
                num_classes: int) -> ImageTensors | StreamedImages:
    """The cache as one in-memory uint8 tensor when it fits `budget_mb`, else as a stream."""
    import h5py

    with h5py.File(path, "r") as f:
        images = f["images"]
        nbytes = images.size  # uint8: one byte per value
        if nbytes <= budget_mb * 2**20:
            return ImageTensors(torch.from_numpy(images[:]), labels, num_classes=num_classes)
        return StreamedImages(Path(path), labels, num_classes, len(images), tuple(images.shape[1:]),
                              num_workers)


def read_cached_labels(path: Path) -> torch.Tensor | None:
    import h5py

    with h5py.File(path, "r") as f:
        return torch.from_numpy(f["labels"][:]).long() if "labels" in f else None
