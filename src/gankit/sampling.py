"""Draw samples from a trained run: a PNG grid or raw float32 arrays."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap

from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint, load_weights, pick_device, resolve_checkpoint
from gankit.data import build_dataset
from gankit.errors import GankitError
from gankit.grids import caption, save_samples
from gankit.latent import TruncatedNormalPrior, build_prior
from gankit.nets import build_nets, drawn_classes
from gankit.utils import atomic_write


def cycled_labels(n: int, num_classes: int, chosen: list[int] | None = None) -> torch.Tensor | None:
    """(n,) labels cycling through `chosen` (default: every class), so each is drawn equally; None when
    the model is unconditional."""
    if not num_classes:
        return None
    chosen = list(range(num_classes)) if not chosen else chosen
    return torch.tensor(chosen, dtype=torch.long)[torch.arange(n) % len(chosen)]


@torch.no_grad()
def iter_samples(G: torch.nn.Module, prior, n: int, seed: int, device: torch.device, num_classes: int,
                 batch_size: int = 250, labels: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """n samples from G in eval mode on seeded noise, as CPU chunks (<= batch_size, *data_shape).

    Conditional G gets `labels` (n,), by default 0, 1, 2, ... cycling, so every class is represented
    equally. G's mode is restored when the iteration ends.
    """
    was_training = G.training
    G.eval()
    noise = torch.Generator(device).manual_seed(seed)
    labels = labels if labels is not None else cycled_labels(n, num_classes)
    try:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            part = labels[start:start + count].to(device) if labels is not None else None
            yield G(prior.sample(count, noise, device), part).float().cpu()
    finally:
        G.train(was_training)


def draw_samples(G: torch.nn.Module, prior, n: int, seed: int, device: torch.device, num_classes: int,
                 batch_size: int = 250, labels: torch.Tensor | None = None) -> torch.Tensor:
    """n samples (n, *data_shape) on the CPU: `iter_samples`, concatenated."""
    return torch.cat(list(iter_samples(G, prior, n, seed, device, num_classes, batch_size, labels)))


@dataclass
class Sampler:
    """A run's generator, ready to draw: `chunks(n, seed)` yields CPU batches of samples."""

    G: torch.nn.Module
    prior: object
    device: torch.device
    shape: tuple[int, ...]  # one sample's shape: (2,) for points, (C, H, W) for images
    num_classes: int
    cfg: config_lib.Config
    payload: dict

    def labels(self, n: int, classes: list[int] | None = None) -> torch.Tensor | None:
        """The (n,) labels a draw of n uses, cycling through `classes` (default: every class)."""
        if classes and not self.num_classes:
            raise GankitError("this run trained an unconditional model, which takes no class; drop --class/--labels.")
        wrong = [c for c in classes or [] if not 0 <= c < self.num_classes]
        if wrong:
            raise GankitError(f"class {wrong[0]} is not one of this run's {self.num_classes} classes "
                              f"(0 to {self.num_classes - 1}).")
        return cycled_labels(n, self.num_classes, classes)

    def chunks(self, n: int, seed: int, batch_size: int = 256,
               labels: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        return iter_samples(self.G, self.prior, n, seed, self.device, self.num_classes, batch_size, labels)


def load_sampler(run_dir: Path, checkpoint: str = "latest", network: str = "G_ema",
                 truncation: float | None = None) -> Sampler:
    """A run checkpoint's generator. `truncation` draws z from N(0, I) truncated to [-T, T] per
    coordinate, whatever the run's prior: the truncation trick (Brock et al. 2019), trading
    variety for fidelity."""
    if truncation is not None and truncation <= 0:
        raise GankitError(f"--truncation must be positive, not {truncation}.")
    path = resolve_checkpoint(Path(run_dir), checkpoint)
    payload = load_checkpoint(path)
    cfg = config_lib.from_dict(payload["config"])
    device = pick_device(cfg.train.device)
    shape, num_classes = tuple(payload["data_shape"]), int(payload["num_classes"])
    G = build_nets(cfg.model, shape, num_classes).G
    if getattr(G, "translates", False):
        raise GankitError(f"{run_dir} is a {cfg.model.name} run, which translates images rather than drawing "
                          "them from noise; use `gankit translate` on it.")
    load_weights(G, payload[network], f"{network} in {path}")
    G.to(device).eval()
    if len(shape) == 3 and hasattr(G, "set_phase"):  # a growing G (PGGAN) draws at its checkpoint's resolution
        shape = (shape[0], G.resolution, G.resolution)
    prior = build_prior(cfg.model) if truncation is None else TruncatedNormalPrior(cfg.model.z_dim, truncation)
    return Sampler(G, prior, device, shape, drawn_classes(cfg.model.name, num_classes), cfg, payload)


@torch.no_grad()
def generate(run_dir: Path, n: int, checkpoint: str = "latest", seed: int = 0,
             network: str = "G_ema", batch_size: int = 256,
             truncation: float | None = None, classes: list[int] | None = None) -> tuple[torch.Tensor, object]:
    """(samples (n, *data_shape) on the CPU, dataset) from a run's checkpoint. `classes`
    (conditional runs) are the labels to cycle through, by default every class."""
    sampler = load_sampler(run_dir, checkpoint, network, truncation)
    # Points are drawn over the real mixture, which is cheap to rebuild; images need no data.
    dataset = build_dataset(sampler.cfg.data) if len(sampler.shape) == 1 else None
    labels = sampler.labels(n, classes)
    return torch.cat(list(sampler.chunks(n, seed, batch_size, labels))), dataset


# A PNG grid of more samples than this is unreadable, and would be drawn in memory at once.
MAX_GRID_SAMPLES = 10_000


def write_npy(path: Path, sampler: Sampler, n: int, seed: int, labels: torch.Tensor | None = None) -> None:
    """n samples as float32 (n, *shape) in a .npy, written chunk by chunk into a memory-mapped file,
    so memory holds one chunk whatever n is. Refused up front when the disk cannot hold the file."""
    needed = n * int(np.prod(sampler.shape)) * 4 + 128  # float32 plus the .npy header
    free = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free
    if needed > free:
        raise GankitError(f"{n} samples of shape {list(sampler.shape)} need {_size(needed)} in {path.name}, but "
                          f"only {_size(free)} is free there; ask for fewer with --n, or write elsewhere.")

    def write(tmp: Path) -> None:
        array = open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, *sampler.shape))
        start = 0
        for chunk in sampler.chunks(n, seed, labels=labels):
            array[start:start + len(chunk)] = chunk.numpy()
            start += len(chunk)
        array.flush()
        del array

    atomic_write(path, write)


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1024 or unit == "TB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} TB"


def sample_to_file(run_dir: Path, n: int, out: Path, checkpoint: str = "latest", seed: int = 0,
                   truncation: float | None = None, classes: list[int] | None = None) -> Path:
    """A captioned grid (.png; a class per row for conditional runs) or raw samples (.npy, with the
    labels of a conditional run's samples in OUT.labels.npy beside it)."""
    out = Path(out)
    if out.suffix not in (".png", ".npy"):
        raise GankitError(f"--out must end in .png (a grid) or .npy (raw samples), not '{out.name}'.")
    if n <= 0:
        raise GankitError(f"--n must be positive, not {n}.")
    if out.suffix == ".png" and n > MAX_GRID_SAMPLES:
        raise GankitError(f"a PNG grid holds at most {MAX_GRID_SAMPLES} samples, not {n}; "
                          "write them to a .npy file instead.")
    sampler = load_sampler(run_dir, checkpoint, truncation=truncation)
    labels = sampler.labels(n, classes)
    if out.suffix == ".npy":
        # (N, 2) for points; (N, C, H, W) in [-1, 1] for images; labels (N,) int64 beside them.
        write_npy(out, sampler, n, seed, labels)
        if labels is not None:
            atomic_write(labels_path(out), lambda tmp: np.save(open(tmp, "wb"), labels.numpy().astype(np.int64)))
    else:
        dataset = build_dataset(sampler.cfg.data) if len(sampler.shape) == 1 else None
        samples = torch.cat(list(sampler.chunks(n, seed, labels=labels)))
        payload = sampler.payload
        save_samples(samples, out, dataset, caption(int(payload["step"]), int(payload["images_seen"])), labels)
    return out


def labels_path(out: Path) -> Path:
    """digits.npy -> digits.labels.npy: the class of each row of a conditional run's samples."""
    return Path(out).with_suffix(".labels.npy")
