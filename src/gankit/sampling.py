"""Draw samples from a trained run: a PNG grid or raw float32 arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gankit.checkpoint import load_generator, resolve_checkpoint
from gankit.data import build_dataset
from gankit.errors import GankitError
from gankit.grids import save_samples
from gankit.latent import TruncatedNormalPrior
from gankit.utils import atomic_write


@torch.no_grad()
def generate(run_dir: Path, n: int, checkpoint: str = "latest", seed: int = 0,
             network: str = "G_ema", batch_size: int = 256,
             truncation: float | None = None) -> tuple[torch.Tensor, object]:
    """(samples (n, *data_shape) on the CPU, dataset) from a run's checkpoint.

    `truncation` draws z from N(0, I) truncated to [-T, T] per coordinate, whatever the run's
    prior: the truncation trick (Brock et al. 2019), trading variety for fidelity."""
    if truncation is not None and truncation <= 0:
        raise GankitError(f"--truncation must be positive, not {truncation}.")
    loaded = load_generator(resolve_checkpoint(Path(run_dir), checkpoint), network)
    # Points are drawn over the real mixture, which is cheap to rebuild; images need no data.
    dataset = build_dataset(loaded.cfg.data) if len(loaded.objective.data_shape) == 1 else None
    prior = None if truncation is None else TruncatedNormalPrior(loaded.cfg.model.z_dim, truncation)
    samples = loaded.objective.generate(loaded.G, n, seed, loaded.device, batch_size, prior=prior)
    return samples, dataset


def sample_to_file(run_dir: Path, n: int, out: Path, checkpoint: str = "latest", seed: int = 0,
                   truncation: float | None = None) -> Path:
    out = Path(out)
    if out.suffix not in (".png", ".npy"):
        raise GankitError(f"--out must end in .png (a grid) or .npy (raw samples), not '{out.name}'.")
    if n <= 0:
        raise GankitError(f"--n must be positive, not {n}.")
    samples, dataset = generate(run_dir, n, checkpoint, seed, truncation=truncation)
    if out.suffix == ".npy":
        # (N, 2) for points; (N, C, H, W) in [-1, 1] for images.
        atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), samples.numpy().astype(np.float32)))
    else:
        save_samples(samples, out, dataset)
    return out
