"""Evaluation during training: scores every `eval.every_kimg`, the best checkpoint, collapse.

Collapse rules (seed 001's "Collapse Steps": the step at which a run collapsed, and the result
before it). Several scores are watched, each by its own rule:
- `eval.best_metric` (default: the first metric's main score), and every score named in
  `eval.collapse_factors`, by the *relative* rule. Let b be the score's best value so far. An
  evaluation is bad when the value is worse than b by the factor f (the score's entry in
  `eval.collapse_factors`, else `eval.collapse_factor`): above b + (f - 1)|b| when lower is
  better (FID: more than f times the best), below b - (1 - 1/f)|b| when higher is better.
- `diversity` (metrics/diversity.py, scored at every evaluation unless `eval.diversity_floor`
  is 0), by the *floor* rule: bad when the samples' spread is below that share of the real
  data's, once it has reached the floor at some evaluation. The relative rule alone missed a
  run whose every sample was one checkerboard, since its classifier-FID rose only 1.7x from an
  already poor best. The rule waits for the floor to be reached because an untrained G also
  draws one image (a DCGAN's diversity is about 0.01 at initialisation and 0.2-0.6 after a
  few dozen steps here): a collapse is diversity lost, not diversity not yet learnt.
A score has collapsed when `eval.collapse_patience` evaluations in a row are bad; the collapse
step is the step of the first of them. On the first collapse of any watched score,
`checkpoints/best.pt` (which predates it when the best score is the one that collapsed) is
copied to `checkpoints/best-before-collapse.pt`, and a `{"event": "collapse"}` record naming
the score and its rule goes into metrics.jsonl. Only the first collapse is recorded; training
goes on. Scores also go to TensorBoard as `eval/NAME`.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gankit.checkpoint import save_checkpoint
from gankit.training.guard import NonFinite, check_finite
from gankit.training.hooks import Hook, open_writer, release_writer
from gankit.utils import append_jsonl, atomic_write, read_jsonl

if TYPE_CHECKING:
    from gankit.training.run import Run


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

    def rule(self) -> str:
        return (f"{self.patience} evaluations in a row worse than the best by a factor {self.factor:g}")

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


class FloorDetector(CollapseDetector):
    """The floor rule: bad when the (higher-is-better) value is below `floor` after the best has reached it."""

    def __init__(self, floor: float, patience: int):
        super().__init__(lower_is_better=False, factor=2.0, patience=patience)
        self.floor = floor

    def is_bad(self, value: float) -> bool:
        return self.best is not None and self.best >= self.floor and value < self.floor

    def rule(self) -> str:
        return f"{self.patience} evaluations in a row below {self.floor:g}, after reaching it"


def can_score_diversity(dataset) -> bool:
    """Diversity compares with real samples: mixtures draw them, in-memory image sets hold them."""
    return hasattr(dataset, "sample") or getattr(dataset, "images", None) is not None


class Evaluator(Hook):
    """Scores `eval.metrics` each time another `eval.every_kimg` of images has been shown, and at the end."""

    def __init__(self, run: Run):
        from gankit.metrics import require_samples
        from gankit.metrics.evaluate import build_user_made_backbones, headline, lower_is_better

        cfg = run.cfg.eval
        self.run_dir: Path = run.run_dir
        self.metrics = list(cfg.metrics)
        require_samples(self.metrics, cfg.num_samples)  # an unknown metric or too few samples fail before training
        self.every_images = cfg.every_kimg * 1000
        self.done_ticks = self._ticks(run.images_seen)
        self.last_step: int | None = None
        self.shared: dict = {}  # backbones and reference features, kept between evaluations
        self.writer = None  # TensorBoard, opened only when there is something to score
        if not self.metrics:
            return
        build_user_made_backbones(self.metrics, run.objective.evaluation_data(), cfg, run.device, self.shared)
        if cfg.diversity_floor > 0 and "diversity" not in self.metrics and can_score_diversity(run.dataset):
            self.metrics.append("diversity")
        self.watch = cfg.best_metric or headline(self.metrics[0])
        self.detector = CollapseDetector(lower_is_better(self.watch), cfg.collapse_factors.get(self.watch,
                                         cfg.collapse_factor), cfg.collapse_patience)
        # (score, detector) pairs; the best-checkpoint score first. An unknown score fails here.
        self.watched = [(self.watch, self.detector)]
        self.watched += [(name, CollapseDetector(lower_is_better(name), factor, cfg.collapse_patience))
                         for name, factor in cfg.collapse_factors.items() if name != self.watch]
        if "diversity" in self.metrics and cfg.diversity_floor > 0:
            self.watched.append(("diversity", FloorDetector(cfg.diversity_floor, cfg.collapse_patience)))
        self.collapse_recorded = False
        self._replay(run.step)

    def _ticks(self, images_seen: int) -> int:
        return int(images_seen // self.every_images) if self.every_images > 0 else 0

    def _replay(self, step: int) -> None:
        """A resumed run picks up its best values and collapse state from metrics.jsonl."""
        records = read_jsonl(self.run_dir / "metrics.jsonl")
        for r in records:
            for name, detector in self.watched:
                if r.get("source") == "training" and r.get("metric") == name and r["checkpoint_step"] <= step:
                    detector.update(r["checkpoint_step"], r["kimg"], r["value"])
        self.collapse_recorded = any(r.get("event") == "collapse" for r in records)
        failed = [r["checkpoint_step"] for r in records if r.get("event") == "evaluation_failed"]
        scored = {r["checkpoint_step"] for r in records if r.get("source") == "training" and "metric" in r}
        if failed and failed[-1] == step and step not in scored:
            self.done_ticks -= 1  # the evaluation that ended the run is made after the resumed run's first step

    def on_step(self, run: Run) -> None:
        ticks = self._ticks(run.images_seen)
        if self.metrics and ticks > self.done_ticks:
            try:
                self.evaluate(run)
            except NonFinite:
                raise  # the divergence guard's business: it rolls back or stops, and writes no checkpoint
            except Exception as exc:
                self._keep_step(run, exc)
                raise
            self.done_ticks = ticks

    def _keep_step(self, run: Run, exc: Exception) -> None:
        """The step itself finished before its evaluation failed (out of memory, a weights file
        removed, a disk gone): latest.pt gets it, so that fixing the cause costs no training, even
        when the last periodic checkpoint is hours old. metrics.jsonl records the failure, and the
        resumed run makes the missed evaluation after its first step."""
        save_checkpoint(self.run_dir / "checkpoints" / "latest.pt", run.checkpoint())
        append_jsonl(self.run_dir / "metrics.jsonl", {
            "event": "evaluation_failed", "checkpoint_step": run.step, "kimg": run.images_seen / 1000,
            "error": f"{type(exc).__name__}: {exc}"})
        print(f"the evaluation at step {run.step} failed; checkpoints/latest.pt holds that step: once the "
              f"cause is fixed, `gankit train --resume {self.run_dir}` evaluates and trains on.",
              file=sys.stderr, flush=True)

    def on_end(self, run: Run) -> None:
        # A run stopped by a signal saves and leaves: an evaluation could outlast the scheduler's grace time.
        if self.metrics and self.last_step != run.step and not run.stop.requested:
            self.evaluate(run)
        self.close()

    def close(self) -> None:
        release_writer(self.writer)
        self.writer = None

    def tensorboard(self):
        """The run's shared writer, opened at first use (again after close(), when the hook is reused)."""
        if self.writer is None:
            self.writer = open_writer(self.run_dir)
        return self.writer

    def evaluate(self, run: Run) -> list[dict]:
        from gankit.metrics.evaluate import score_sets
        from gankit.metrics.plot import plot_metrics

        check_finite(run)  # a diverged G is the guard's business, not a metric's error
        cfg = run.cfg.eval
        started = time.perf_counter()
        sets = run.objective.evaluation_sets(getattr(run, cfg.network), cfg.num_samples, cfg.seed, run.device)
        records = score_sets(sets, self.metrics, cfg, run.device, f"step-{run.step:06d} (in training)", run.step,
                             run.images_seen, "training", dataset=run.dataset, shared=self.shared)
        for record in records:
            append_jsonl(self.run_dir / "metrics.jsonl", record)
            if isinstance(record["value"], (int, float)):
                self.tensorboard().add_scalar(f"eval/{record['metric']}", record["value"], global_step=run.step)
        self.tensorboard().flush()
        self.last_step = run.step
        self._best_and_collapse(run, records)
        collapsed = [d.collapsed_at for _, d in self.watched if d.collapsed_at and d.collapsed_at[1] >= 0]
        collapse_kimg = min(kimg for _, kimg in collapsed) if collapsed else None
        plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "plots" / "metrics.png",
                     collapse_kimg if collapse_kimg is not None and collapse_kimg >= 0 else None)
        text = "  ".join(f"{r['metric']} {r['value']:.4g}" for r in records if not r["metric"].endswith("_std"))
        print(f"eval step {run.step}  kimg {run.images_seen / 1000:.1f}  {text}  "
              f"({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)
        return records

    def _best_and_collapse(self, run: Run, records: list[dict]) -> None:
        # A translation run's scores are per direction (kid/AtoB): the first direction stands for the metric.
        values = {r["metric"]: r["value"] for r in reversed(records)}
        values |= {r["metric"].split("/")[0]: r["value"] for r in reversed(records) if "/" in r["metric"]}
        folder = self.run_dir / "checkpoints"
        if self.watch in values and self.detector.is_better(values[self.watch]):
            save_checkpoint(folder / "best.pt", run.checkpoint())
        for name, detector in self.watched:
            if name not in values or not detector.update(run.step, run.images_seen / 1000, values[name]):
                continue
            if self.collapse_recorded:
                continue
            self.collapse_recorded = True
            step, kimg = detector.collapsed_at
            if (folder / "best.pt").is_file():
                atomic_write(folder / "best-before-collapse.pt", lambda tmp: shutil.copyfile(folder / "best.pt", tmp))
            append_jsonl(self.run_dir / "metrics.jsonl", {
                "event": "collapse", "metric": name, "collapse_step": step, "collapse_kimg": kimg,
                "detected_step": run.step, "value": values[name], "best_value": detector.best,
                "rule": detector.rule(), "best_checkpoint": "checkpoints/best-before-collapse.pt",
            })
            message = (f"collapse: {name} has been bad ({detector.rule()}) since step {step}; "
                       "kept checkpoints/best-before-collapse.pt")
            self.tensorboard().add_text("collapse", message, global_step=run.step)
            self.tensorboard().flush()
            print(message, file=sys.stderr, flush=True)
