"""Figures drawn from the run's JSONL logs (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402

from gankit.utils import atomic_write, read_jsonl  # noqa: E402


def _last_per_step(records: list[dict]) -> list[dict]:
    # A resumed run may log a step twice (once before the crash, once after); keep the later.
    by_step = {r["step"]: r for r in records if "event" not in r}  # rollback events carry no losses
    return [by_step[s] for s in sorted(by_step)]


def plot_losses(stats_path: Path, out_path: Path) -> None:
    records = _last_per_step(read_jsonl(stats_path))
    if not records:
        return
    names = sorted({k for r in records for k in r if k.startswith(("D/", "G/"))})
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in names:
        points = [(r["kimg"], r[name]) for r in records if name in r]
        ax.plot(*zip(*points, strict=True), label=name)
    ax.set_xlabel("kimg (thousands of real images shown to D)")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def real_extent(real) -> tuple[float, float, float, float]:
    """Square axis limits around the real points, 15% beyond their extent: the frame of every scatter
    of a run, so that frames compare (the real sample is drawn from a fixed seed, hence the same)."""
    lo, hi = real.min(0), real.max(0)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.15 + 1e-6
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def scatter_figure(fake, real, title: str = ""):
    """2-D samples drawn over the real ones: the picture of mode coverage.

    Real points go underneath in black, generated ones on top in translucent red, so that both
    a mode with no samples (black showing) and samples piling up (solid red) can be seen. The
    axes come from the real data alone and stay fixed from frame to frame; generated points
    beyond them are counted in the title rather than allowed to rescale the frame. The legend
    sits under the axes, where it can never cover a mode.
    """
    x0, x1, y0, y1 = real_extent(real)
    fig, ax = plt.subplots(figsize=(5, 5.4))
    ax.scatter(real[:, 0], real[:, 1], s=1, c="black", label="real", zorder=1)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:red", alpha=0.3, linewidths=0, label="generated", zorder=2)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    outside = int(((fake[:, 0] < x0) | (fake[:, 0] > x1) | (fake[:, 1] < y0) | (fake[:, 1] > y1)).sum())
    note = f"\n{outside} of {len(fake)} generated points lie outside the frame" if outside else ""
    ax.set_title(title + note, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=2, markerscale=4, frameon=False)
    fig.tight_layout()
    return fig


def scatter_points(fake, real, out_path: Path, title: str = "") -> None:
    fig = scatter_figure(fake, real, title)
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
