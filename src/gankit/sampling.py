"""Draw samples from a trained run: a PNG grid or raw float32 arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankit import config as config_lib
from gankit.data import build_dataset
from gankit.errors import GankitError
from gankit.latent import TruncatedNormalPrior, build_prior
from gankit.nets import build_nets
from gankit.training.checkpoint import load_checkpoint
from gankit.training.hooks import save_samples
from gankit.training.loop import pick_device
from gankit.utils import atomic_write


def cycled_labels(n: int, num_classes: int, chosen: list[int] | None = None) -> torch.Tensor | None:
    """(n,) labels cycling through `chosen` (default: every class), so each is drawn equally; None when
    the model is unconditional."""
    if not num_classes:
        return None
    chosen = list(range(num_classes)) if not chosen else chosen
    return torch.tensor(chosen, dtype=torch.long)[torch.arange(n) % len(chosen)]


@torch.no_grad()
def draw_samples(G: torch.nn.Module, prior, n: int, seed: int, device: torch.device, num_classes: int,
                 batch_size: int = 250, labels: torch.Tensor | None = None) -> torch.Tensor:
    """n samples (n, *data_shape) on the CPU from G in eval mode, on seeded noise; G's mode is restored.

    Conditional G gets `labels` (n,), by default 0, 1, 2, ... cycling, so every class is represented equally.
    """
    was_training = G.training
    G.eval()
    noise = torch.Generator(device).manual_seed(seed)
    labels = labels if labels is not None else cycled_labels(n, num_classes)
    chunks = []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        part = labels[start:start + count].to(device) if labels is not None else None
        chunks.append(G(prior.sample(count, noise, device), part).float().cpu())
    G.train(was_training)
    return torch.cat(chunks)


def resolve_checkpoint(run_dir: Path, checkpoint: str) -> Path:
    """latest, best, a step number, or a path -> the checkpoint file, or one sentence why not."""
    folder = Path(run_dir) / "checkpoints"
    if checkpoint in ("latest", "best"):
        path = folder / f"{checkpoint}.pt"
        if not path.is_file():
            hint = ("it is written when training evaluates eval.metrics" if checkpoint == "best"
                    else "train the run first")
            raise GankitError(f"{run_dir} has no checkpoints/{checkpoint}.pt; {hint}.")
        return path
    if checkpoint.isdigit():
        path = folder / f"step-{int(checkpoint):06d}.pt"
        if not path.is_file():
            steps = sorted(p.stem[5:].lstrip("0") or "0" for p in folder.glob("step-*.pt"))
            raise GankitError(f"{run_dir} has no checkpoint at step {checkpoint}; it has steps "
                              f"{', '.join(steps) or 'none'}, or use latest or best.")
        return path
    return Path(checkpoint)


@torch.no_grad()
def generate(run_dir: Path, n: int, checkpoint: str = "latest", seed: int = 0,
             network: str = "G_ema", batch_size: int = 256,
             truncation: float | None = None, classes: list[int] | None = None) -> tuple[torch.Tensor, object]:
    """(samples (n, *data_shape) on the CPU, dataset) from a run's checkpoint.

    `truncation` draws z from N(0, I) truncated to [-T, T] per coordinate, whatever the run's
    prior: the truncation trick (Brock et al. 2019), trading variety for fidelity. `classes`
    (conditional runs) are the labels to cycle through, by default every class."""
    samples, _, dataset, _ = _generate(run_dir, n, checkpoint, seed, network, batch_size, truncation, classes)
    return samples, dataset


def _generate(run_dir, n, checkpoint, seed, network, batch_size, truncation, classes):
    """generate's work, also returning the labels drawn and the checkpoint's payload."""
    if truncation is not None and truncation <= 0:
        raise GankitError(f"--truncation must be positive, not {truncation}.")
    payload = load_checkpoint(resolve_checkpoint(Path(run_dir), checkpoint))
    cfg = config_lib.from_dict(payload["config"])
    device = pick_device(cfg.train.device)
    shape, num_classes = tuple(payload["data_shape"]), int(payload["num_classes"])
    if classes and not num_classes:
        raise GankitError(f"{run_dir} trained an unconditional model, which takes no class; drop --class/--labels.")
    wrong = [c for c in classes or [] if not 0 <= c < num_classes]
    if wrong:
        raise GankitError(f"class {wrong[0]} is not one of this run's {num_classes} classes (0 to {num_classes - 1}).")
    # Points are drawn over the real mixture, which is cheap to rebuild; images need no data.
    dataset = build_dataset(cfg.data) if len(shape) == 1 else None
    G = build_nets(cfg.model, shape, num_classes).G
    G.load_state_dict(payload[network])
    G.to(device).eval()
    prior = build_prior(cfg.model) if truncation is None else TruncatedNormalPrior(cfg.model.z_dim, truncation)
    labels = cycled_labels(n, num_classes, classes)
    return draw_samples(G, prior, n, seed, device, num_classes, batch_size, labels), labels, dataset, payload


def sample_to_file(run_dir: Path, n: int, out: Path, checkpoint: str = "latest", seed: int = 0,
                   truncation: float | None = None, classes: list[int] | None = None) -> Path:
    """A captioned grid (.png; a class per row for conditional runs) or raw samples (.npy, with the
    labels of a conditional run's samples in OUT.labels.npy beside it)."""
    from gankit.training.hooks import caption

    out = Path(out)
    if out.suffix not in (".png", ".npy"):
        raise GankitError(f"--out must end in .png (a grid) or .npy (raw samples), not '{out.name}'.")
    if n <= 0:
        raise GankitError(f"--n must be positive, not {n}.")
    samples, labels, dataset, payload = _generate(run_dir, n, checkpoint, seed, "G_ema", 256, truncation, classes)
    if out.suffix == ".npy":
        # (N, 2) for points; (N, C, H, W) in [-1, 1] for images; labels (N,) int64 beside them.
        atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), samples.numpy().astype(np.float32)))
        if labels is not None:
            atomic_write(labels_path(out), lambda tmp: np.save(open(tmp, "wb"), labels.numpy().astype(np.int64)))
    else:
        save_samples(samples, out, dataset, caption(int(payload["step"]), int(payload["images_seen"])), labels)
    return out


def labels_path(out: Path) -> Path:
    """digits.npy -> digits.labels.npy: the class of each row of a conditional run's samples."""
    return Path(out).with_suffix(".labels.npy")
