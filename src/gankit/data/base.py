"""Dataset containers and their resumable batch sources."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.ranks import SINGLE, Ranks


@dataclass
class ImageTensors:
    """A whole image dataset as one uint8 tensor: small datasets train fastest this way.

    Batches are then a gather on the training device, with no DataLoader worker overhead.
    """

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor | None  # (N,) int64, or None when unlabelled
    num_classes: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return self.images.shape[0]

    def loader(self, batch_size: int, seed: int, device: torch.device, ranks: Ranks = SINGLE) -> InMemoryLoader:
        return InMemoryLoader(self, batch_size, seed, device, ranks)


def fetch_hint(download: bool) -> str:
    """The end of a missing-files sentence: what `data.download` can or could not do."""
    return "the download failed (is there a network?)" if download else "add data.download=true to fetch them"


def require_batch(count: int, batch_size: int) -> None:
    """A loader needs at least one whole batch: every batch has the same size."""
    if count < batch_size:
        raise GankitError(f"the dataset has {count} images, fewer than train.batch_size={batch_size}; "
                          "lower the batch size.")


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of G's Tanh output, in torch's default dtype:
    float32, unless a caller trains in float64 (the DDP equivalence test does, to compare exactly)."""
    return images.to(torch.get_default_dtype()).div_(127.5).sub_(1.0)


def resize_uint8(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, R, R) uint8, antialiased bilinear (the PIL-like default)."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = F.interpolate(images.float(), size=(resolution, resolution), mode="bilinear",
                        antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey -> RGB by repetition, RGB -> grey by ITU-R 601 luma."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).round_().to(torch.uint8)


class InMemoryLoader:
    """Shuffled epochs over an in-memory dataset; each epoch's order comes from a seeded generator.

    The state (generator, current permutation, position) goes into every checkpoint, so a
    resumed run sees exactly the batches an uninterrupted run would have.
    """

    def __init__(self, data: ImageTensors, batch_size: int, seed: int, device: torch.device,
                 ranks: Ranks = SINGLE):
        require_batch(len(data), batch_size)
        ranks.rows(batch_size)  # refuses a global batch that does not divide among the ranks
        self.ranks = ranks  # which rows of each global batch this process reads
        self.images = data.images.to(device)
        self.labels = data.labels.to(device) if data.labels is not None else None
        self.batch_size = batch_size
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self.order = torch.randperm(len(data), generator=self.generator)

    def next(self, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next `batch_size` images (default: the loader's); the size may change between calls
        (PGGAN's per-resolution batch), and the position, counted in images, stays exact."""
        batch_size = batch_size or self.batch_size
        require_batch(len(self.order), batch_size)
        if self.position + batch_size > len(self.order):
            # Drop the ragged tail: every batch has the same size, as BatchNorm prefers.
            self.order = torch.randperm(len(self.order), generator=self.generator)
            self.position = 0
            self.epoch += 1
        index = self.ranks.take(self.order[self.position:self.position + batch_size]).to(self.device)
        self.position += batch_size
        images = to_unit_range(self.images.index_select(0, index))  # (B, C, H, W) in [-1, 1]
        labels = self.labels.index_select(0, index) if self.labels is not None else None
        return images, labels

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order.clone(),
                "position": self.position, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])


class SampledLoader:
    """Endless fresh batches from `draw(n, generator) -> (x, labels | None)`.

    For data that is sampled rather than stored (the 2-D mixtures, stand-in tensors): the
    generator's state is the whole position, so it alone goes into a checkpoint.
    """

    def __init__(self, draw, batch_size: int, seed: int, device: torch.device, ranks: Ranks = SINGLE):
        ranks.rows(batch_size)
        self.draw, self.batch_size, self.device, self.ranks = draw, batch_size, device, ranks
        self.generator = torch.Generator().manual_seed(seed)

    def next(self, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The global batch, so the stream stays in step on every rank; each keeps its rows.
        x, labels = self.draw(batch_size or self.batch_size, self.generator)
        x, labels = self.ranks.take(x), self.ranks.take(labels)
        return x.to(self.device), (labels.to(self.device) if labels is not None else None)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
