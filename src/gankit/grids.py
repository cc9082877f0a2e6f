"""Pictures of samples: image grids and 2-D scatter plots, shared by training, sampling and translation.

Lives below `training` so that `sampling` and `metrics` never import the training package.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")  # no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402

from gankit.utils import atomic_write  # noqa: E402


def save_samples(fake: torch.Tensor, path: Path, dataset, title: str = "", nrow: int | None = None) -> None:
    """A PNG of samples: an image grid (`nrow` images a row, default square), or a scatter over
    real points for 2-D data."""
    if fake.dim() == 2:
        real, _ = dataset.sample(len(fake), torch.Generator().manual_seed(0))
        scatter_points(fake.numpy(), real.numpy(), path, title)
        return
    from torchvision.utils import save_image

    nrow = nrow or max(1, int(len(fake) ** 0.5))
    atomic_write(path, lambda tmp: save_image(fake, tmp, format="png", nrow=nrow, normalize=True,
                                              value_range=(-1, 1), padding=2))


def scatter_points(fake, real, out_path: Path, title: str = "") -> None:
    """2-D samples over real ones: the picture of mode coverage."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.4, label="generated")
    ax.scatter(real[:, 0], real[:, 1], s=1, c="black", label="real")  # on top: modes stay visible
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    ax.set_title(title)
    fig.tight_layout()
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
