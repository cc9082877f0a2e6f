"""Two unpaired image folders, A and B, as CycleGAN (Zhu, Park, Isola & Efros 2017) trains on.

The layout is CycleGAN's and Kaggle selfie2anime's: `data.path` holds `trainA/` and `trainB/`
(and `testA/`, `testB/` for `data.split=test`); plain `A/` and `B/` work too. Each folder is an
image folder (recursive, robust, cached) of its own, and the two may differ in size.

A batch of n images is half A, half B: `real[:n//2]` is domain A and `real[n//2:]` domain B, and
the labels say so (0 = A, 1 = B). A CycleGAN loss takes its two batches with `split_domains`; any
other model sees a two-class labelled dataset (a conditional GAN learns to draw either domain).
Each domain is shuffled on its own, so which A meets which B changes every epoch, as it should
when nothing is paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gankit.data import register_dataset, sources
from gankit.data.imagefolder import cache_folder, folder_path
from gankit.data.images import list_image_files
from gankit.errors import GankitError
from gankit.ranks import SINGLE, Ranks

DOMAIN_A, DOMAIN_B = 0, 1


def split_domains(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) unpaired batch -> (A images (B/2, ...), B images (B/2, ...))."""
    return real.chunk(2)


def domain_folder(root: Path, split: str, domain: str) -> Path:
    for name in (f"{split}{domain}", domain):
        if (root / name).is_dir():
            return root / name
    raise GankitError(f"{root} has no {split}{domain}/ (or {domain}/) folder; unpaired data needs "
                      f"{split}A/ and {split}B/ folders of images inside data.path.")


def one_domain(data: UnpairedImages, cfg):
    """Both domains (`data.domain` empty), or one of them alone with its own labels (A or B)."""
    return {"": data, "A": data.a, "B": data.b}[cfg.domain]


@dataclass
class UnpairedImages:
    a: object  # ImageTensors or StreamedImages of domain A
    b: object  # the same for domain B
    num_classes: int = 2  # the domain is the label

    @property
    def shape(self) -> tuple[int, ...]:
        return self.a.shape

    def __len__(self) -> int:
        return len(self.a) + len(self.b)

    def loader(self, batch_size: int, seed: int, device: torch.device, ranks: Ranks = SINGLE) -> UnpairedLoader:
        return UnpairedLoader(self, batch_size, seed, device, ranks)


class UnpairedLoader:
    """One loader per domain, each with its own seed and position; both go into checkpoints."""

    def __init__(self, data: UnpairedImages, batch_size: int, seed: int, device: torch.device,
                 ranks: Ranks = SINGLE):
        self.batch_size, self.device, self.ranks = batch_size, device, ranks
        half = self._half(batch_size)
        self.a = data.a.loader(half, seed, device, ranks)
        self.b = data.b.loader(half, seed + 1, device, ranks)  # another order than A's, even for equal sizes

    def _half(self, batch_size: int) -> int:
        """Each domain's share of a global batch; refuses sizes that break the half-A, half-B split."""
        if batch_size % 2:
            raise GankitError(f"unpaired batches are half A, half B, so train.batch_size must be even, "
                              f"not {batch_size}.")
        # Each rank takes its rows of each half, so every rank's batch is still half A, half B.
        world = self.ranks.world_size
        if (batch_size // 2) % world:
            raise GankitError(f"unpaired batches are half A, half B on each of {world} processes, so "
                              f"train.batch_size must be a multiple of {2 * world}, not {batch_size}.")
        return batch_size // 2

    def next(self, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        half = self._half(batch_size or self.batch_size)
        real_a, _ = self.a.next(half)
        real_b, _ = self.b.next(half)
        local = half // self.ranks.world_size
        labels = torch.tensor([DOMAIN_A] * local + [DOMAIN_B] * local, device=self.device)
        return torch.cat([real_a, real_b]), labels  # (B, C, H, W), (B,) domain labels

    def state_dict(self) -> dict:
        return {"a": self.a.state_dict(), "b": self.b.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.a.load_state_dict(state["a"])
        self.b.load_state_dict(state["b"])


@register_dataset("unpaired")
def build_unpaired(cfg):
    root = folder_path(cfg)
    if not root.is_dir():
        raise GankitError(f"unpaired data: {root} is not a folder; put the two domains' images in its trainA/ and "
                          "trainB/ folders, or set data.path to the folder that holds them.")
    folders = [domain_folder(root, cfg.split, d) for d in "AB"]
    for domain, folder in zip("AB", folders, strict=True):
        if not list_image_files(folder):
            raise GankitError(f"{folder} has no images, so domain {domain} is empty; unpaired data needs images "
                              "on both sides, so add some or point data.path elsewhere.")
    paths = [cache_folder(cfg, folder, "unpaired", f"{cfg.split}{d}") for d, folder in zip("AB", folders, strict=True)]
    a, b = (sources.load(cfg, p, None, num_classes=0) for p in paths)
    if a.shape != b.shape:
        raise GankitError(f"domains A and B have different image shapes {a.shape} and {b.shape}.")
    return one_domain(UnpairedImages(a, b), cfg)
