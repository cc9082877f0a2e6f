"""plots/metrics.png: every score against kimg, one panel per score, drawn from metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402

from gankit.utils import atomic_write, read_jsonl  # noqa: E402


def plot_metrics(metrics_path: Path, out_path: Path, collapse_kimg: float | None = None) -> None:
    records = [r for r in read_jsonl(metrics_path) if "metric" in r and r.get("source") == "training"
               and isinstance(r.get("value"), (int, float)) and not r["metric"].endswith("_std")]
    names = list(dict.fromkeys(r["metric"] for r in records))
    if not names:
        return
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.6 * len(names)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        by_step = {r["checkpoint_step"]: r for r in records if r["metric"] == name}  # resumed runs: keep the later
        points = sorted((r["kimg"], r["value"]) for r in by_step.values())
        ax.plot(*zip(*points, strict=True), marker="o", markersize=3)
        first = by_step[min(by_step)]
        ax.set_ylabel(name)
        reference = f", {first['n_reference']} {first['reference_split']} refs" if first.get("n_reference") else ""
        ax.set_title(f"{name}: {first['network']}, n={first['n_generated']}{reference}"
                     f" ({first.get('backbone') or 'no backbone'})", fontsize=9)
        if collapse_kimg is not None:
            ax.axvline(collapse_kimg, color="tab:red", linestyle="--", label="collapse")
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("kimg (thousands of real images shown to D)")
    fig.tight_layout()
    atomic_write(out_path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
