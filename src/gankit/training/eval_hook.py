"""Evaluation during training: scores every `eval.every_kimg`, the best checkpoint, collapse.

Collapse rule (seed 001's "Collapse Steps": the step at which a run collapsed, and the result
before it). The watched score is `eval.best_metric` (default: the first metric's main score).
Let b be its best value over the evaluations so far. An evaluation is *bad* when its value is
worse than b by the factor f = `eval.collapse_factor`: above b + (f - 1)|b| when lower is
better (FID: more than f times the best), below b - (1 - 1/f)|b| when higher is better. The run
has collapsed when `eval.collapse_patience` evaluations in a row are bad; the collapse step is
the step of the first of them. Then `checkpoints/best.pt` (which by construction predates the
collapse) is copied to `checkpoints/best-before-collapse.pt`, and a `{"event": "collapse"}`
record goes into metrics.jsonl. Only the first collapse is recorded; training goes on.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.checkpoint import save_checkpoint
from gankit.training.hooks import Hook
from gankit.utils import append_jsonl, atomic_write, read_jsonl

if TYPE_CHECKING:
    from gankit.training.loop import Run


class CollapseDetector:
    """The rule above, over a stream of (step, kimg, value)."""

    def __init__(self, lower_is_better: bool, factor: float, patience: int):
        self.lower, self.factor, self.patience = lower_is_better, factor, patience
        self.best: float | None = None
        self.bad_run: list[tuple[int, float]] = []  # (step, kimg) of consecutive bad evaluations
        self.collapsed_at: tuple[int, float] | None = None

    def is_bad(self, value: float) -> bool:
        if self.best is None:
            return False
        margin = abs(self.best)
        if self.lower:
            return value > self.best + (self.factor - 1) * margin
        return value < self.best - (1 - 1 / self.factor) * margin

    def is_better(self, value: float) -> bool:
        return self.best is None or (value < self.best if self.lower else value > self.best)

    def update(self, step: int, kimg: float, value: float) -> bool:
        """Feed one evaluation; True exactly when this one reveals the collapse."""
        if self.is_bad(value):
            self.bad_run.append((step, kimg))
        else:
            self.bad_run = []
        if self.is_better(value):
            self.best = value
        if self.collapsed_at is None and len(self.bad_run) >= self.patience:
            self.collapsed_at = self.bad_run[0]
            return True
        return False


class Evaluator(Hook):
    """Scores `eval.metrics` each time another `eval.every_kimg` of images has been shown, and at the end."""

    def __init__(self, run: Run):
        from gankit.metrics import build_metric
        from gankit.metrics.evaluate import headline, lower_is_better

        cfg = run.cfg.eval
        self.run_dir: Path = run.run_dir
        self.metrics = list(cfg.metrics)
        for name in self.metrics:
            build_metric(name)  # an unknown metric fails before training starts
        self.every_images = cfg.every_kimg * 1000
        self.done_ticks = self._ticks(run.images_seen)
        self.last_step: int | None = None
        self.shared: dict = {}  # backbones and reference features, kept between evaluations
        if not self.metrics:
            return
        self.watch = cfg.best_metric or headline(self.metrics[0])
        self.detector = CollapseDetector(lower_is_better(self.watch), cfg.collapse_factor, cfg.collapse_patience)
        self._replay(run.step)

    def _ticks(self, images_seen: int) -> int:
        return int(images_seen // self.every_images) if self.every_images > 0 else 0

    def _replay(self, step: int) -> None:
        """A resumed run picks up its best value and collapse state from metrics.jsonl."""
        records = read_jsonl(self.run_dir / "metrics.jsonl")
        for r in records:
            if r.get("source") == "training" and r.get("metric") == self.watch and r["checkpoint_step"] <= step:
                self.detector.update(r["checkpoint_step"], r["kimg"], r["value"])
        if any(r.get("event") == "collapse" for r in records):
            self.detector.collapsed_at = self.detector.collapsed_at or (-1, -1.0)

    def on_step(self, run: Run) -> None:
        ticks = self._ticks(run.images_seen)
        if self.metrics and ticks > self.done_ticks:
            self.done_ticks = ticks
            self.evaluate(run)

    def on_end(self, run: Run) -> None:
        if self.metrics and self.last_step != run.step:
            self.evaluate(run)

    def evaluate(self, run: Run) -> list[dict]:
        from gankit.metrics.evaluate import Evaluation, score_samples
        from gankit.metrics.plot import plot_metrics

        cfg = run.cfg.eval
        started = time.perf_counter()
        fake = run.objective.generate(getattr(run, cfg.network), cfg.num_samples, cfg.seed, run.device)
        ev = Evaluation(fake, run.cfg.data, cfg, run.device, dataset=run.dataset, shared=self.shared)
        records = score_samples(ev, self.metrics, f"step-{run.step:06d} (in training)", run.step, run.images_seen,
                                "training")
        for record in records:
            append_jsonl(self.run_dir / "metrics.jsonl", record)
        self.last_step = run.step
        self._best_and_collapse(run, records)
        collapse_kimg = self.detector.collapsed_at[1] if self.detector.collapsed_at else None
        plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "plots" / "metrics.png",
                     collapse_kimg if collapse_kimg is not None and collapse_kimg >= 0 else None)
        text = "  ".join(f"{r['metric']} {r['value']:.4g}" for r in records if not r["metric"].endswith("_std"))
        print(f"eval step {run.step}  kimg {run.images_seen / 1000:.1f}  {text}  "
              f"({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)
        return records

    def _best_and_collapse(self, run: Run, records: list[dict]) -> None:
        watched = next((r for r in records if r["metric"] == self.watch), None)
        if watched is None:
            return
        folder = self.run_dir / "checkpoints"
        if self.detector.is_better(watched["value"]):
            save_checkpoint(folder / "best.pt", run.checkpoint())
        if self.detector.update(run.step, run.images_seen / 1000, watched["value"]):
            step, kimg = self.detector.collapsed_at
            if (folder / "best.pt").is_file():
                atomic_write(folder / "best-before-collapse.pt", lambda tmp: shutil.copyfile(folder / "best.pt", tmp))
            append_jsonl(self.run_dir / "metrics.jsonl", {
                "event": "collapse", "metric": self.watch, "collapse_step": step, "collapse_kimg": kimg,
                "detected_step": run.step, "best_value": self.detector.best,
                "rule": f"{self.detector.patience} evaluations in a row worse than the best by a factor "
                        f"{self.detector.factor:g}", "best_checkpoint": "checkpoints/best-before-collapse.pt",
            })
            print(f"collapse: {self.watch} has been {self.detector.factor:g}x worse than its best since step {step}; "
                  "kept checkpoints/best-before-collapse.pt", file=sys.stderr, flush=True)
