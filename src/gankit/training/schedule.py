"""The training schedule: what changes as training goes on, as a function of images seen.

`Schedule.phase(images_seen)` returns a `Phase`, the settings of the step about to run. The loop
applies it at the top of every step (`phase.apply(opt_G, opt_D)`) and hands it to the objective's
`make_batch`, so a schedule that grows the resolution, fades in a layer or changes the batch
size (PGGAN) adds fields here and reads them in its objective, with no change to the loop.

Counting in images rather than steps keeps a schedule's meaning when the batch size changes.
Because the phase is a function of images seen, which every checkpoint holds, a resumed run is in
the same phase as one that never stopped (mid-fade included).

Kind (`train.schedule`):
- constant: one resolution and batch size for the whole run (every preset but PGGAN's);
- progressive: PGGAN's growth (Karras et al. 2018, sec. 2): 4x4 for `train.stable_kimg`, then
  per doubling of the resolution a fade of `train.fade_kimg` and a stable stretch of
  `train.stable_kimg`, until the data resolution, where training continues. Its lrs follow
  `train.lr_schedule` like any other run's: one mechanism, one lr rule.

Learning rate (`train.lr_schedule`):
- constant: lr_G and lr_D throughout;
- linear: lr_G and lr_D until the last `train.lr_decay_fraction` of the run's images, then a
  straight line to 0 at the end. The default fraction 0.5 is CycleGAN's (Zhu et al. 2017, sec. 7:
  100 epochs at 2e-4, then 100 epochs decaying linearly to 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.training.hooks import Hook
from gankit.utils import append_jsonl

if TYPE_CHECKING:
    from gankit.config import Config
    from gankit.training.loop import Run


@dataclass(frozen=True)
class Phase:
    """The settings of one training step."""

    lr_G: float  # generator learning rate for this step
    lr_D: float  # discriminator learning rate for this step
    stage: str = "constant"  # the stretch of the schedule this is in, such as "fade 16" or "stable 16"
    batch_size: int | None = None  # images per forward pass; None = the loader's (train.batch_size)
    resolution: int | None = None  # side in px that G makes and D judges; None = the data's own
    alpha: float = 1.0  # fade-in of the newest block: 0 = all old block, 1 = all new

    def apply(self, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer, *nets: nn.Module) -> None:
        """Set the optimizers' learning rates and, on growing nets (PGGAN), resolution and alpha."""
        for optimizer, lr in ((opt_G, self.lr_G), (opt_D, self.lr_D)):
            for group in optimizer.param_groups:
                group["lr"] = lr
        if self.resolution is None:
            return
        for net in nets:
            set_phase = getattr(net, "set_phase", None)  # growing nets (PGGAN) only
            if set_phase is not None:
                set_phase(self.resolution, self.alpha)

    def real(self, images: torch.Tensor) -> torch.Tensor:
        """Real images (B, C, H, W) at the phase's resolution and, during a fade, blended between it
        and the previous one the way G's output is (the paper's sec. A.1): the half-resolution
        image, nearest-upsampled, mixed in by 1 - alpha. Unchanged when the phase has no resolution."""
        if self.resolution is None or images.dim() != 4 or images.shape[-1] == self.resolution and self.alpha >= 1:
            return images
        x = F.adaptive_avg_pool2d(images, self.resolution)  # area downsampling: exact 2x2 means for powers of 2
        if self.alpha < 1:
            low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
            x = torch.lerp(low, x, self.alpha)
        return x

    def record(self) -> dict:
        return {"stage": self.stage, "resolution": self.resolution, "alpha": self.alpha,
                "batch_size": self.batch_size, "lr_G": self.lr_G, "lr_D": self.lr_D}


class Schedule:
    """lr as a function of images seen; see the module docstring."""

    def __init__(self, train_cfg, images_per_step: int):
        # The lrs come from the config the schedule is built from; a divergence rollback halves them
        # in run.cfg and rebuilds run.schedule (training/guard.py), so they are never restored here.
        self.batch_size, self.images_per_step = train_cfg.batch_size, images_per_step
        self.lr_G, self.lr_D = train_cfg.lr_G, train_cfg.lr_D
        self.kind = train_cfg.lr_schedule
        self.total_images = train_cfg.steps * images_per_step  # the run's length, in images shown to D
        # Where the linear decay starts; a constant schedule never reaches it, even when a resume
        # with a smaller batch makes images_seen pass steps * images_per_step.
        self.decay_start = (self.total_images * (1.0 - train_cfg.lr_decay_fraction) if self.kind == "linear"
                            else math.inf)

    def factor(self, images_seen: int) -> float:
        """lr multiplier in [0, 1] for the step that starts after `images_seen` images."""
        if self.kind == "constant" or images_seen < self.decay_start:  # constant: also past the run's end
            return 1.0
        return max(0.0, (self.total_images - images_seen) / max(self.total_images - self.decay_start, 1.0))

    def phase(self, images_seen: int) -> Phase:
        f = self.factor(images_seen)
        return Phase(lr_G=self.lr_G * f, lr_D=self.lr_D * f, batch_size=self.batch_size)

    def hooks(self, run: Run) -> list[Hook]:
        """Hooks that report on the schedule (phase changes, per-phase grids); none by default."""
        return []

    # A pure function of images seen (saved in the checkpoint) and of the config, so there is no
    # state to carry; the methods exist so that every stateful object saves the same way.
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class ProgressiveSchedule(Schedule):
    """PGGAN's growth: stable 4, fade 8, stable 8, ..., fade R, stable R (and on at R)."""

    def __init__(self, cfg: Config, images_per_step: int):
        super().__init__(cfg.train, images_per_step)  # the lrs, and train.lr_schedule's decay of them
        t = cfg.train
        self.resolutions = growth_resolutions(cfg.data.resolution)
        self.batch = {r: t.batch_per_resolution.get(r, t.batch_size) for r in self.resolutions}
        # (stage, resolution, first image, images in it); the last stable stretch runs on.
        self.stages: list[tuple[str, int, int, int]] = []
        start, fade, stable = 0, round(t.fade_kimg * 1000), round(t.stable_kimg * 1000)
        for r in self.resolutions:
            for kind, length in ((("fade", fade),) if r > self.resolutions[0] else ()) + (("stable", stable),):
                self.stages.append((f"{kind} {r}", r, start, length))
                start += length

    def phase(self, images_seen: int) -> Phase:
        stage, resolution, start, length = next(
            (s for s in self.stages if images_seen < s[2] + s[3]), self.stages[-1])
        alpha = min(1.0, (images_seen - start) / length) if stage.startswith("fade") else 1.0
        f = self.factor(images_seen)
        return Phase(self.lr_G * f, self.lr_D * f, stage, self.batch[resolution], resolution, alpha)

    def hooks(self, run: Run) -> list[Hook]:
        return [PhaseReport(run.run_dir)]


def growth_resolutions(resolution: int) -> list[int]:
    from gankit.nets.pggan import check_resolution, resolutions_up_to

    check_resolution(resolution)
    return resolutions_up_to(resolution)


class PhaseReport(Hook):
    """A stats.jsonl record at every phase change (stage, resolution, alpha, batch), and at the end of
    each resolution its last G_ema grid kept as samples/res-XX.png (with checkpoints/res-XX.pt),
    so the growth can be seen and scored afterwards."""

    def __init__(self, run_dir):
        self.run_dir = run_dir  # the schedule is run.schedule: a rollback rebuilds it with halved lrs
        self.logged: str | None = None

    def on_step(self, run: Run) -> None:
        current = run.phase  # the phase the step just taken ran in
        if self.logged != current.stage:  # the first step of a run, or of a resumed run
            self._log(run, current)
        upcoming = run.schedule.phase(run.images_seen)
        if upcoming.resolution != current.resolution:
            self.finish_resolution(run, current)
        if upcoming.stage != current.stage:
            self._log(run, upcoming)

    def on_end(self, run: Run) -> None:
        self.finish_resolution(run, run.phase or run.schedule.phase(run.images_seen))

    def _log(self, run: Run, phase: Phase) -> None:
        append_jsonl(self.run_dir / "stats.jsonl", {"event": "phase", "step": run.step, "images_seen": run.images_seen,
                                                    "kimg": run.images_seen / 1000, **phase.record()})
        self.logged = phase.stage

    def finish_resolution(self, run: Run, phase: Phase) -> None:
        from gankit.checkpoint import save_checkpoint
        from gankit.grids import save_samples

        with torch.no_grad():
            fake, labels, nrow = run.objective.preview(run.G_ema, run.preview_inputs)
        # Nearest-upsampled to the data resolution: every grid the same size, each pixel a block.
        fake = F.interpolate(fake, size=run.dataset.shape[-2:], mode="nearest")
        title = f"{phase.resolution} px, step {run.step}, {run.images_seen / 1000:.1f} kimg"
        save_samples(fake, self.run_dir / "samples" / f"res-{phase.resolution:02d}.png", run.dataset, title,
                     labels, nrow)
        save_checkpoint(self.run_dir / "checkpoints" / f"res-{phase.resolution:02d}.pt", run.checkpoint())


def build_schedule(cfg: Config, images_per_step: int) -> Schedule:
    """The run's schedule: `train.schedule` picks its kind, `train.lr_schedule` its lrs."""
    if cfg.train.schedule == "progressive":
        if cfg.model.name != "pggan":
            raise GankitError(f"train.schedule=progressive grows the networks, which model {cfg.model.name} cannot; "
                              "use model.name=pggan or train.schedule=constant.")
        return ProgressiveSchedule(cfg, images_per_step)
    return Schedule(cfg.train, images_per_step)
