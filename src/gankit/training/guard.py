"""The divergence guard: a non-finite loss or weight never reaches a checkpoint.

Two checks share one test (`state_is_finite`):
- `DivergenceGuard`, a hook, looks at every logging step, before the stats logger empties the
  loss meter. The meter's sums cover every step since the last log and NaN/inf survive a sum,
  so one host sync per log step sees a blow-up at any step in between; there is no per-step sync.
- `Run.checkpoint()` and the evaluator check again before they save or score a state, because a
  checkpoint or an evaluation may fall between two logging steps.
Either raises `NonFinite`. `train()` hands it to `DivergencePolicy`, which stops the run (exit 3)
or rolls back to the last good checkpoint with both learning rates halved.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.errors import Diverged
from gankit.training.hooks import Hook, _due
from gankit.utils import append_jsonl, truncate_jsonl

if TYPE_CHECKING:
    from gankit.training.run import Run


class NonFinite(Exception):
    """Raised inside training when the state went non-finite; never shown to a user as such."""

    def __init__(self, step: int, what: str):
        super().__init__(f"non-finite {what} at step {step}")
        self.step, self.what = step, what


def _named_tensors(run: Run) -> dict[str, torch.Tensor]:
    tensors = {f"loss {name}": total for name, total in run.meter.sums.items()}
    for net in ("G", "D", "G_ema"):
        for name, tensor in getattr(run, net).state_dict().items():
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():  # not PGGAN's phase (extra state)
                tensors[f"{net} weight {name}"] = tensor
    return tensors


def check_finite(run: Run) -> None:
    """Raise NonFinite unless every summed loss and every G, D, G_ema tensor is finite: one host sync."""
    tensors = _named_tensors(run)
    flags = torch.stack([t.detach().isfinite().all() for t in tensors.values()])
    if bool(flags.all()):
        return
    first = next(name for name, ok in zip(tensors, flags.tolist(), strict=True) if not ok)
    raise NonFinite(run.step, first)


class DivergenceGuard(Hook):
    """At each logging step (before StatsLogger summarises the meter): are losses and weights finite?"""

    def __init__(self, every: int):
        self.every = every

    def on_step(self, run: Run) -> None:
        if _due(run.step, self.every) or run.step == run.cfg.train.steps:
            check_finite(run)


class DivergencePolicy:
    """What `train()` does with a NonFinite: `train.on_divergence` = stop | rollback.

    rollback restores checkpoints/latest.pt (which the checks above kept finite), or the run's
    first state when no checkpoint exists yet, halves lr_G and lr_D, and goes on, at most
    `train.max_rollbacks` times. Each rollback cuts stats.jsonl back to the restored step and
    appends an `{"event": "rollback"}` record there, and config.yaml records the new rates."""

    def __init__(self, run: Run):
        self.initial: bytes | None = None
        if run.cfg.train.on_divergence == "rollback" and not self._latest(run).is_file():
            buffer = io.BytesIO()  # the state to return to if the run diverges before its first checkpoint
            torch.save(run.checkpoint(), buffer)
            self.initial = buffer.getvalue()

    @staticmethod
    def _latest(run: Run) -> Path:
        return run.run_dir / "checkpoints" / "latest.pt"

    def handle(self, run: Run, exc: NonFinite) -> None:
        t = run.cfg.train
        latest = self._latest(run)
        good = f"checkpoints/latest.pt (step {self._step_of(latest)})" if latest.is_file() else "none yet"
        if t.on_divergence == "stop" or run.rollbacks >= t.max_rollbacks:
            tried = f" after {run.rollbacks} rollbacks" if t.on_divergence == "rollback" else ""
            advice = ("raise train.max_rollbacks, or lower the rates further" if tried
                      else "lower train.lr_G and train.lr_D, or set train.on_divergence=rollback")
            raise Diverged(f"training diverged at step {exc.step}{tried}: {exc.what} is not finite; the last good "
                           f"checkpoint is {good}; {advice}, and resume (or start anew).")
        rollbacks = run.rollbacks + 1
        if latest.is_file():
            payload = load_checkpoint(latest)
        else:
            payload = torch.load(io.BytesIO(self.initial), map_location="cpu", weights_only=True)
        lr_G, lr_D = t.lr_G / 2, t.lr_D / 2
        run.cfg = dataclasses.replace(run.cfg, train=dataclasses.replace(t, lr_G=lr_G, lr_D=lr_D))
        # restore() rebuilds the schedule from run.cfg, so it applies the halved rates every step,
        # and sets them in the optimizers' param groups.
        run.restore(payload)
        run.meter.reset()  # its sums hold the non-finite losses
        run.rollbacks = rollbacks
        truncate_jsonl(run.run_dir / "stats.jsonl", run.step)
        append_jsonl(run.run_dir / "stats.jsonl", {
            "event": "rollback", "step": run.step, "diverged_step": exc.step, "reason": f"{exc.what} not finite",
            "rollback": rollbacks, "lr_G": lr_G, "lr_D": lr_D})
        config_lib.save(run.cfg, run.run_dir / "config.yaml")
        print(f"diverged at step {exc.step} ({exc.what} not finite); rolled back to step {run.step} with "
              f"lr_G {lr_G:g} and lr_D {lr_D:g} (rollback {rollbacks} of {t.max_rollbacks})",
              file=sys.stderr, flush=True)

    @staticmethod
    def _step_of(path: Path) -> int:
        return int(load_checkpoint(path)["step"])
