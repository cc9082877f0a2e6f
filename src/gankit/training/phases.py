"""Training schedules, counted in images seen: at any point of a run, the phase it is in.

A phase is what may change while a run trains: the learning rates, the resolution G and D work
at, the fade-in alpha of the newest block, and the batch size. The loop asks the schedule for the
phase at the start of every step (`schedule.phase(images_seen)`) and applies it; nothing else in
the loop knows which schedule it runs. Because the phase is a function of images seen, which
every checkpoint holds, a resumed run is in the same phase as one that never stopped.

- `constant`: one phase for the whole run, from the config (every preset but PGGAN's);
- `progressive`: PGGAN's growth (Karras et al. 2018, sec. 2): 4x4 for `train.stable_kimg`, then
  per doubling of the resolution a fade of `train.fade_kimg` and a stable stretch of
  `train.stable_kimg`, until the data resolution, where training continues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.registry import Registry
from gankit.training.hooks import Hook, save_samples
from gankit.utils import append_jsonl

if TYPE_CHECKING:
    from gankit.config import Config
    from gankit.training.loop import Run


@dataclass(frozen=True)
class Phase:
    stage: str  # name of the stretch of the schedule this is in, such as "fade 16" or "stable 16"
    lr_G: float
    lr_D: float
    batch_size: int  # images per forward pass
    resolution: int  # side in px that G makes and D judges; real images are resized to it
    alpha: float = 1.0  # fade-in of the newest block: 0 = all old block, 1 = all new

    def apply(self, run: Run) -> None:
        """Set the optimizers' learning rates and the networks' resolution and alpha."""
        for optimizer, lr in ((run.opt_G, self.lr_G), (run.opt_D, self.lr_D)):
            for group in optimizer.param_groups:
                group["lr"] = lr
        for net in (run.G, run.D, run.G_ema):
            set_phase = getattr(net, "set_phase", None)  # growing nets (PGGAN) only
            if set_phase is not None:
                set_phase(self.resolution, self.alpha)

    def real(self, images: torch.Tensor) -> torch.Tensor:
        """Real images (B, C, H, W) at the phase's resolution and, during a fade, blended between it
        and the previous one the way G's output is (the paper's sec. A.1): the half-resolution
        image, nearest-upsampled, mixed in by 1 - alpha."""
        if images.dim() != 4 or images.shape[-1] == self.resolution and self.alpha >= 1:
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
    def phase(self, images_seen: int) -> Phase:
        raise NotImplementedError

    def hooks(self, run: Run) -> list[Hook]:
        """Hooks that report on the schedule (phase changes, per-phase grids); none by default."""
        return []


class ConstantSchedule(Schedule):
    def __init__(self, cfg: Config):
        self.fixed = Phase("constant", cfg.train.lr_G, cfg.train.lr_D, cfg.train.batch_size, cfg.data.resolution)

    def phase(self, images_seen: int) -> Phase:
        return self.fixed


class ProgressiveSchedule(Schedule):
    """PGGAN's growth: stable 4, fade 8, stable 8, ..., fade R, stable R (and on at R)."""

    def __init__(self, cfg: Config):
        t = cfg.train
        self.lr_G, self.lr_D = t.lr_G, t.lr_D
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
        return Phase(stage, self.lr_G, self.lr_D, self.batch[resolution], resolution, alpha)

    def hooks(self, run: Run) -> list[Hook]:
        return [PhaseReport(self, run.run_dir)]


def growth_resolutions(resolution: int) -> list[int]:
    from gankit.nets.pggan import check_resolution, resolutions_up_to

    check_resolution(resolution)
    return resolutions_up_to(resolution)


class PhaseReport(Hook):
    """A stats.jsonl record at every phase change (stage, resolution, alpha, batch), and at the end of
    each resolution its last G_ema grid kept as samples/res-XX.png (with checkpoints/res-XX.pt),
    so the growth can be seen and scored afterwards."""

    def __init__(self, schedule: Schedule, run_dir):
        self.schedule, self.run_dir = schedule, run_dir
        self.logged: str | None = None

    def on_step(self, run: Run) -> None:
        current = run.phase  # the phase the step just taken ran in
        if self.logged != current.stage:  # the first step of a run, or of a resumed run
            self._log(run, current)
        upcoming = self.schedule.phase(run.images_seen)
        if upcoming.resolution != current.resolution:
            self.finish_resolution(run, current)
        if upcoming.stage != current.stage:
            self._log(run, upcoming)

    def on_end(self, run: Run) -> None:
        self.finish_resolution(run, run.phase or self.schedule.phase(run.images_seen))

    def _log(self, run: Run, phase: Phase) -> None:
        append_jsonl(self.run_dir / "stats.jsonl", {"event": "phase", "step": run.step, "images_seen": run.images_seen,
                                                    "kimg": run.images_seen / 1000, **phase.record()})
        self.logged = phase.stage

    def finish_resolution(self, run: Run, phase: Phase) -> None:
        from gankit.training.checkpoint import save_checkpoint

        with torch.no_grad():
            fake = run.G_ema(run.fixed_z, run.fixed_labels).float().cpu()
        # Nearest-upsampled to the data resolution: every grid the same size, each pixel a block.
        fake = F.interpolate(fake, size=run.dataset.shape[-2:], mode="nearest")
        title = f"{phase.resolution} px, step {run.step}, {run.images_seen / 1000:.1f} kimg"
        save_samples(fake, self.run_dir / "samples" / f"res-{phase.resolution:02d}.png", run.dataset, title)
        save_checkpoint(self.run_dir / "checkpoints" / f"res-{phase.resolution:02d}.pt", run.checkpoint())


SCHEDULES: Registry = Registry("schedule")
SCHEDULES.register("constant")(ConstantSchedule)
SCHEDULES.register("progressive")(ProgressiveSchedule)


def build_schedule(cfg: Config) -> Schedule:
    schedule = SCHEDULES.build(cfg.train.schedule, cfg)
    if cfg.train.schedule == "progressive" and cfg.model.name != "pggan":
        raise GankitError(f"train.schedule=progressive grows the networks, which model {cfg.model.name} cannot; "
                          "use model.name=pggan or train.schedule=constant.")
    return schedule
