"""Features that run between training steps, each an object with its own schedule.

The loop calls `hook.on_step(run)` after every step and `hook.on_end(run)` once at the end; a
hook decides for itself whether the step is one of its own. Later features (evaluation,
divergence guard, DDP-aware logging) are more hooks, not more branches in the loop.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gankit.checkpoint import save_checkpoint
from gankit.grids import save_samples
from gankit.training.plots import plot_losses
from gankit.utils import append_jsonl

if TYPE_CHECKING:
    from gankit.training.loop import Run


class Hook:
    def on_step(self, run: Run) -> None:
        pass

    def on_end(self, run: Run) -> None:
        pass


def _due(step: int, every: int) -> bool:
    return step % every == 0


class LossMeter:
    """Sums loss terms on the device; `.item()` happens only when a summary is asked for."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            value = value.detach()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def summary(self) -> dict[str, float]:
        out = {name: (total / self.counts[name]).item() for name, total in self.sums.items()}
        self.sums.clear()
        self.counts.clear()
        return out


class StatsLogger(Hook):
    """One stats.jsonl record and the same TensorBoard scalars every `every` steps."""

    def __init__(self, run_dir: Path, every: int):
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / "stats.jsonl"
        self.every = every
        self.writer = SummaryWriter(log_dir=str(run_dir))  # `tensorboard --logdir runs` lists runs
        self.last_time = time.perf_counter()
        self.last_images: int | None = None

    def on_step(self, run: Run) -> None:
        if _due(run.step, self.every) or run.step == run.cfg.train.steps:
            self._log(run)

    def _log(self, run: Run) -> None:
        now = time.perf_counter()
        last_images = run.images_seen_at_start if self.last_images is None else self.last_images
        rate = (run.images_seen - last_images) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_images = now, run.images_seen
        record = {
            "step": run.step,
            "images_seen": run.images_seen,
            "kimg": run.images_seen / 1000,
            **run.meter.summary(),
            "lr_G": run.opt_G.param_groups[0]["lr"],
            "lr_D": run.opt_D.param_groups[0]["lr"],
            "img_per_s": rate,
            "seconds": run.seconds(),
        }
        append_jsonl(self.path, record)
        for key, value in record.items():
            if key not in ("step", "images_seen"):
                self.writer.add_scalar(key, value, global_step=run.step)
        self.writer.flush()
        run.last_stats = record

    def on_end(self, run: Run) -> None:
        self.writer.close()


class Progress(Hook):
    """A tqdm bar on a terminal; in CI logs (no TTY), one plain line per stats record."""

    def __init__(self, total_steps: int, start_step: int, every: int):
        from tqdm import tqdm

        self.tty = sys.stderr.isatty()
        self.every, self.total = every, total_steps
        self.bar = tqdm(total=total_steps, initial=start_step, disable=not self.tty,
                        unit="step", dynamic_ncols=True, file=sys.stderr)

    def on_step(self, run: Run) -> None:
        self.bar.update(1)
        if run.last_stats is None or run.last_stats["step"] != run.step:
            return
        stats = run.last_stats
        losses = {k: f"{v:.3f}" for k, v in stats.items() if k.startswith(("D/", "G/"))}
        if self.tty:
            self.bar.set_postfix(kimg=f"{stats['kimg']:.1f}", **losses, img_s=f"{stats['img_per_s']:.0f}")
        else:
            eta = (self.total - run.step) * run.images_per_step / max(stats["img_per_s"], 1e-9)
            text = "  ".join(f"{k} {v}" for k, v in losses.items())
            print(f"step {run.step}/{self.total}  kimg {stats['kimg']:.1f}  {text}  "
                  f"img/s {stats['img_per_s']:.0f}  ETA {_duration(eta)}", file=sys.stderr, flush=True)

    def on_end(self, run: Run) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class SampleGrid(Hook):
    """G_ema on the objective's fixed preview inputs every `every` steps: samples/step-XXXXXX.png."""

    def __init__(self, run_dir: Path, every: int):
        self.dir = run_dir / "samples"
        self.every = every

    def on_step(self, run: Run) -> None:
        if _due(run.step, self.every):
            self.write(run)

    def on_end(self, run: Run) -> None:
        if not (self.dir / f"step-{run.step:06d}.png").exists():
            self.write(run)

    def write(self, run: Run) -> Path:
        path = self.dir / f"step-{run.step:06d}.png"
        fake, nrow = run.objective.preview(run.G_ema, run.preview_inputs)
        save_samples(fake, path, run.dataset, title=f"step {run.step}, {run.images_seen / 1000:.1f} kimg", nrow=nrow)
        return path


class Checkpointer(Hook):
    """checkpoints/step-XXXXXX.pt every `every` steps, latest.pt then and at the end, and the
    loss plot redrawn with each."""

    def __init__(self, run_dir: Path, every: int):
        self.run_dir, self.every = run_dir, every

    def on_step(self, run: Run) -> None:
        if _due(run.step, self.every):
            payload = run.checkpoint()
            save_checkpoint(self.run_dir / "checkpoints" / f"step-{run.step:06d}.pt", payload)
            save_checkpoint(self.run_dir / "checkpoints" / "latest.pt", payload)
            plot_losses(self.run_dir / "stats.jsonl", self.run_dir / "plots" / "losses.png")

    def on_end(self, run: Run) -> None:
        save_checkpoint(self.run_dir / "checkpoints" / "latest.pt", run.checkpoint())
        plot_losses(self.run_dir / "stats.jsonl", self.run_dir / "plots" / "losses.png")
