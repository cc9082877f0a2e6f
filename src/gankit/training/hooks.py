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
from gankit.grids import caption, save_samples
from gankit.training.plots import plot_losses
from gankit.utils import append_jsonl

if TYPE_CHECKING:
    from gankit.training.run import Run


class Hook:
    def on_step(self, run: Run) -> None:
        pass

    def on_end(self, run: Run) -> None:
        pass

    def close(self) -> None:
        """Release files and bars; called by on_end, and by train() when the loop is left by an exception."""


def end_all(hooks: list[Hook], run: Run) -> None:
    """Every hook's `on_end` in order, each even after an earlier one failed; then the first
    failure is raised. The checkpointer's final latest.pt must not hang on the evaluation before
    it: an end-of-run evaluation that fails (out of memory, its weights file removed) would otherwise
    lose every step since the last periodic checkpoint. Resuming the finished run evaluates again."""
    failure: Exception | None = None
    for hook in hooks:
        try:
            hook.on_end(run)
        except Exception as exc:  # re-raised below, once the other hooks have ended
            failure = failure or exc
    if failure is not None:
        raise failure


def _due(step: int, every: int) -> bool:
    return step % every == 0


class LossMeter:
    """Sums loss terms on the device; `.item()` happens only when a summary is asked for."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            # float32 sums: under bf16 autocast a term is bfloat16, whose 8-bit mantissa stops a running
            # sum from growing once the sum is about 256 times the term (a D loss near 1.28 logged as
            # 512 / 400 = 1.28125 at every log, whatever D did); float16 does the same at 2,048 times.
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def summary(self) -> dict[str, float]:
        out = {name: (total / self.counts[name]).item() for name, total in self.sums.items()}
        self.reset()
        return out

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()


_WRITERS: dict[str, list] = {}  # log dir -> [SummaryWriter, number of hooks holding it]


def open_writer(run_dir: Path, purge_step: int | None = None):
    """The run's one TensorBoard writer, shared by every hook that logs to it (one event file).

    `purge_step` (from the first hook to open it) hides what an earlier process logged from that
    step on: a resumed run redoes those steps, as train() cuts stats.jsonl back to its checkpoint."""
    from torch.utils.tensorboard import SummaryWriter

    key = str(Path(run_dir).resolve())
    if key not in _WRITERS:
        # `tensorboard --logdir runs` lists runs.
        _WRITERS[key] = [SummaryWriter(log_dir=str(run_dir), purge_step=purge_step), 0]
    _WRITERS[key][1] += 1
    return _WRITERS[key][0]


def release_writer(writer) -> None:
    """Flush; the last hook to let go closes the file. A hook releases once (its close() sets its writer to None)."""
    if writer is None:
        return
    writer.flush()
    for key, entry in list(_WRITERS.items()):
        if entry[0] is writer:
            entry[1] -= 1
            if entry[1] <= 0:
                writer.close()
                del _WRITERS[key]


class StatsLogger(Hook):
    """One stats.jsonl record and the same TensorBoard scalars every `every` steps."""

    def __init__(self, run_dir: Path, every: int, start_step: int = 0):
        self.path = run_dir / "stats.jsonl"
        self.every = every
        self.writer = open_writer(run_dir, purge_step=start_step + 1 if start_step else None)
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
        self.close()

    def close(self) -> None:
        release_writer(self.writer)
        self.writer = None


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
        self.close()

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class SampleGrid(Hook):
    """G_ema on fixed noise every `every` steps: samples/step-XXXXXX.png, and the same picture in TensorBoard."""

    def __init__(self, run_dir: Path, every: int):
        self.dir = run_dir / "samples"
        self.every = every
        self.writer = open_writer(run_dir)

    def on_step(self, run: Run) -> None:
        if _due(run.step, self.every):
            self.write(run)

    def on_end(self, run: Run) -> None:
        if not (self.dir / f"step-{run.step:06d}.png").exists():
            self.write(run)
        self.close()

    def close(self) -> None:
        release_writer(self.writer)
        self.writer = None

    def write(self, run: Run) -> Path:
        import numpy as np
        from PIL import Image

        path = self.dir / f"step-{run.step:06d}.png"
        fake, labels, nrow = run.objective.preview(run.G_ema, run.preview_inputs)
        save_samples(fake, path, run.dataset, caption(run.step, run.images_seen), labels, nrow)
        with Image.open(path) as image:
            self.writer.add_image("samples", np.asarray(image.convert("RGB")), run.step, dataformats="HWC")
        self.writer.flush()
        return path


class Checkpointer(Hook):
    """checkpoints/step-XXXXXX.pt every `every` steps, latest.pt then and at the end, and the
    loss plot redrawn with each. With `keep` > 0, only the newest `keep` step files stay;
    latest.pt, best.pt and best-before-collapse.pt are never deleted."""

    def __init__(self, run_dir: Path, every: int, keep: int = 0):
        self.run_dir, self.every, self.keep = run_dir, every, keep

    def on_step(self, run: Run) -> None:
        if _due(run.step, self.every):
            payload = run.checkpoint()  # raises NonFinite rather than return a state that is not finite
            save_checkpoint(self.run_dir / "checkpoints" / f"step-{run.step:06d}.pt", payload)
            save_checkpoint(self.run_dir / "checkpoints" / "latest.pt", payload)
            self.prune()
            plot_losses(self.run_dir / "stats.jsonl", self.run_dir / "plots" / "losses.png")

    def prune(self) -> None:
        # Only after both saves succeeded, so a full disk never leaves fewer good files than before.
        if self.keep:
            steps = sorted((self.run_dir / "checkpoints").glob("step-*.pt"))  # zero-padded: by name is by step
            for old in steps[:-self.keep]:
                old.unlink(missing_ok=True)

    def on_end(self, run: Run) -> None:
        save_checkpoint(self.run_dir / "checkpoints" / "latest.pt", run.checkpoint())
        plot_losses(self.run_dir / "stats.jsonl", self.run_dir / "plots" / "losses.png")
