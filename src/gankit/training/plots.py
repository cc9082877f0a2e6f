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
