"""The training loop: one function, with every feature plugged in as an object.

A step is one generator update, preceded by `train.discriminator_steps` discriminator updates;
each update sums the gradients of `train.gradient_accumulation` batches. Progress is counted in
real images shown to D (`images_seen`, kimg), which survives a change of batch size.

The loop never calls G or the prior itself: the objective (the loss family) turns each real
batch into a `Batch`. G runs forward once per batch of the last D update; D trains on those
fakes detached, and G's update reuses them with their graph, as the plain PyTorch DCGAN loop
does. Earlier D updates (train.discriminator_steps > 1) make their fakes without a graph.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit import config as config_lib
from gankit.augment import build_augment
from gankit.checkpoint import capture_rng, latest_checkpoint, load_checkpoint, load_weights, pick_device, restore_rng
from gankit.config import Config
from gankit.data import build_dataset
from gankit.errors import GankitError, Stopped
from gankit.losses import Objective, build_objective
from gankit.nets import Nets, build_nets
from gankit.penalties import build_penalties
from gankit.rundir import run_lock
from gankit.training.ema import EMA
from gankit.training.eval_hook import Evaluator
from gankit.training.guard import DivergenceGuard, DivergencePolicy, NonFinite, check_finite
from gankit.training.hooks import Checkpointer, Hook, LossMeter, Progress, SampleGrid, StatsLogger
from gankit.training.resuming import NOT_RESUMABLE, check_data_shape, check_same_run, keep_old_config
from gankit.training.schedule import Phase, Schedule, build_schedule
from gankit.training.stop import GracefulStop, StopFlag
from gankit.utils import remove_temp_files, truncate_jsonl


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(name: str, params, lr: float, betas: list[float]) -> torch.optim.Optimizer:
    if name == "rmsprop":  # WGAN (Arjovsky 2017) found momentum-based optimizers unstable
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas))


@dataclass
class Run:
    """Everything a hook may read or save about the run in progress."""

    cfg: Config
    run_dir: Path
    dataset: Any
    loader: Any
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    objective: Objective  # makes each step's batch, the sample grids and the samples metrics score
    schedule: Schedule  # lrs (and PGGAN's resolution, fade-in alpha, batch size) as a function of images seen
    device: torch.device
    noise: torch.Generator  # draws every z, so resuming restores the noise stream exactly
    preview_inputs: dict[str, torch.Tensor]  # what G_ema sees in every sample grid (fixed noise, test images)
    images_per_step: int
    step: int = 0
    images_seen: int = 0
    images_seen_at_start: int = 0
    seconds_before: float = 0.0  # training time spent before this process (resumed runs)
    started: float = field(default_factory=time.perf_counter)
    meter: LossMeter = field(default_factory=LossMeter)
    last_stats: dict | None = None
    phase: Phase | None = None  # of the step in progress (or last taken): resolution, alpha, batch, lrs
    stop: StopFlag = field(default_factory=StopFlag)  # set by a signal: the loop ends after the current step
    rollbacks: int = 0  # divergence rollbacks so far (train.max_rollbacks caps them)

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def checkpoint(self) -> dict[str, Any]:
        check_finite(self)  # raises NonFinite: a checkpoint is never written from a diverged state
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "objective": self.objective.state_dict(), "schedule": self.schedule.state_dict(),
            "step": self.step, "images_seen": self.images_seen, "seconds": self.seconds(),
            "rng": {**capture_rng(), "noise": self.noise.get_state(), "data": self.loader.state_dict()},
            "config": config_lib.to_dict(self.cfg),
            # So that sampling needs neither the dataset on disk nor a rebuild of it.
            "data_shape": list(self.dataset.shape), "num_classes": int(self.dataset.num_classes),
            "rollbacks": self.rollbacks,
        }

    def restore(self, payload: dict[str, Any]) -> None:
        for key in ("G", "D", "G_ema", "opt_G", "opt_D"):
            load_weights(getattr(self, key), payload[key], key)
        # The optimizer state brings back the rates it was saved with; the config (which resume
        # overrides and rollbacks change) decides them.
        t = self.cfg.train
        for opt, lr in ((self.opt_G, t.lr_G), (self.opt_D, t.lr_D)):
            for group in opt.param_groups:
                group["lr"] = lr
                if "betas" in group:
                    group["betas"] = tuple(t.betas)
        self.objective.load_state_dict(payload.get("objective", {}))
        self.schedule.load_state_dict(payload.get("schedule", {}))
        self.rollbacks = int(payload.get("rollbacks", 0))
        self.step, self.images_seen = int(payload["step"]), int(payload["images_seen"])
        self.images_seen_at_start = self.images_seen
        self.seconds_before = float(payload.get("seconds", 0.0))
        restore_rng(payload["rng"])
        self.noise.set_state(payload["rng"]["noise"])
        self.loader.load_state_dict(payload["rng"]["data"])


def build_run(cfg: Config, run_dir: Path, device: torch.device, dataset: Any = None) -> Run:
    """Networks, optimizers, data and fixed noise for `cfg`, initialised from its seed.

    `dataset` replaces `cfg.data`'s dataset (benchmarks time a model on stand-in tensors)."""
    seed_everything(cfg.train.seed)
    dataset = dataset if dataset is not None else build_dataset(cfg.data)
    cfg = config_lib.steps_from_epochs(cfg, dataset)  # train.epochs, when set, counted over this dataset
    nets = build_nets(cfg.model, dataset.shape, dataset.num_classes)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.preserve_format
    G = nets.G.to(device, memory_format=memory_format)
    D = nets.D.to(device, memory_format=memory_format)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G = make_optimizer(cfg.train.optimizer, G.parameters(), cfg.train.lr_G, cfg.train.betas)
    opt_D = make_optimizer(cfg.train.optimizer, D.parameters(), cfg.train.lr_D, cfg.train.betas)
    objective = build_objective(cfg, dataset.shape, dataset.num_classes)
    per_batch = cfg.train.gradient_accumulation * cfg.train.discriminator_steps
    schedule = build_schedule(cfg, cfg.train.batch_size * per_batch)
    # At the schedule's start (PGGAN's batch changes with the resolution); progress ETAs use it.
    images_per_step = (schedule.phase(0).batch_size or cfg.train.batch_size) * per_batch
    return Run(
        cfg=cfg, run_dir=run_dir, dataset=dataset,
        loader=dataset.loader(cfg.train.batch_size, cfg.train.seed, device),
        G=G, D=D, G_ema=G_ema, opt_G=opt_G, opt_D=opt_D,
        objective=objective, schedule=schedule, device=device,
        noise=torch.Generator(device).manual_seed(cfg.train.seed + 2),
        preview_inputs=objective.preview_inputs(dataset, cfg.train.grid_samples, cfg.train.seed + 1, device),
        images_per_step=images_per_step,
    )


def default_hooks(run: Run) -> list[Hook]:
    t = run.cfg.train
    # Order matters: the guard before stats (it reads the loss sums the stats logger then empties),
    # stats before progress (which prints them), checkpoint last (it plots them).
    return [
        DivergenceGuard(t.log_every),
        StatsLogger(run.run_dir, t.log_every, run.step),
        Progress(t.steps, run.step, t.log_every),
        SampleGrid(run.run_dir, t.sample_every),
        *run.schedule.hooks(run),  # PGGAN: phase changes in stats.jsonl, samples/res-XX.png
        Evaluator(run),  # eval.metrics every eval.every_kimg; best.pt; collapse detection
        Checkpointer(run.run_dir, t.checkpoint_every, t.keep_checkpoints),
    ]


def training_loop(run: Run, hooks: list[Hook]) -> None:
    cfg = run.cfg.train
    objective = run.objective
    ema = EMA(cfg.ema_halflife_kimg)
    augment: nn.Module = build_augment(cfg, run.dataset.shape)  # nn.Identity() unless train.augment
    penalties = build_penalties(run.cfg.loss)  # [] unless loss.penalties names some
    nets = Nets(G=run.G.train().requires_grad_(True), D=run.D.train())

    while run.step < cfg.steps and not run.stop.requested:
        # The phase of this step (a function of images seen): lrs; PGGAN's resolution, alpha, batch.
        run.phase = phase = run.schedule.phase(run.images_seen)
        phase.apply(run.opt_G, run.opt_D, run.G, run.D, run.G_ema)
        images_before = run.images_seen

        # Discriminator phase: D learns to tell real batches from G's current fakes. Only the last
        # D update's fakes keep their graph: G's update below reuses them.
        nets.D.requires_grad_(True)
        for d_step in range(cfg.discriminator_steps):
            kept = []
            run.opt_D.zero_grad(set_to_none=True)
            for _ in range(cfg.gradient_accumulation):
                real, labels = run.loader.next(phase.batch_size)
                with torch.set_grad_enabled(d_step == cfg.discriminator_steps - 1):
                    batch = objective.make_batch(nets, real, labels, run.noise, phase)
                d_batch = batch.detached().augmented(augment)
                terms = objective.discriminator(nets, d_batch)
                for penalty in penalties:
                    terms |= penalty(nets, d_batch, run.step)
                (sum(terms.values()) / cfg.gradient_accumulation).backward()
                run.meter.add(terms)
                kept.append(batch)
                run.images_seen += len(real)
            run.opt_D.step()
            objective.after_discriminator_step(nets)

        # Generator phase: G learns to make the updated D call the same fakes real.
        nets.D.requires_grad_(False)
        run.opt_G.zero_grad(set_to_none=True)
        for batch in kept:
            terms = objective.generator(nets, batch.augmented(augment))
            (sum(terms.values()) / cfg.gradient_accumulation).backward()
            run.meter.add(terms)
        del kept, batch  # free G's graph before the hooks run
        run.opt_G.step()
        ema.update(run.G_ema, nets.G, run.images_seen - images_before)  # half-life in logged images

        run.step += 1
        for hook in hooks:
            hook.on_step(run)

    for hook in hooks:
        hook.on_end(run)


def train(cfg: Config, run_dir: Path, resume_from: Path | None = None,
          on_start: Callable[[Path], None] | None = None) -> Path:
    """Train `cfg` into `run_dir`; with `resume_from`, continue from that checkpoint exactly.

    One process at a time: a second one on the same run directory is refused (`run_lock`).
    Raises Diverged (exit 3) when the run diverges and may not roll back, and Stopped after a
    signal, once latest.pt is saved."""
    run_dir = Path(run_dir)
    with run_lock(run_dir):
        remove_temp_files(run_dir)  # half-written files of a process killed mid-write
        device = pick_device(cfg.train.device)
        payload = load_checkpoint(resume_from) if resume_from else None
        if payload is not None:
            check_same_run(cfg, run_dir, payload, resume_from)
        run = build_run(cfg, run_dir, device)
        if payload is not None:
            check_data_shape(run, payload, resume_from)
            run.restore(payload)
            if on_start is not None:  # e.g. the CLI's command.txt, written only once every check has passed
                on_start(run_dir)
            truncate_jsonl(run_dir / "stats.jsonl", run.step)  # what was logged after the checkpoint is redone
            keep_old_config(run_dir, run.cfg, run.step)
        else:
            config_lib.save(run.cfg, run_dir / "config.yaml")
        (run_dir / "metrics.jsonl").touch()
        policy = DivergencePolicy(run)
        while True:
            hooks = default_hooks(run)
            try:
                with GracefulStop() as run.stop:
                    training_loop(run, hooks)
                break
            except NonFinite as exc:
                for hook in hooks:
                    hook.close()
                policy.handle(run, exc)  # raises Diverged, or restores the last good state to go on from
        if run.stop.requested:
            raise Stopped(f"stopped at step {run.step}; continue with `gankit train --resume {run_dir}`.",
                          run.stop.signum)
    return run_dir


def resume(run_dir: Path, overrides: list[str] = (), on_start: Callable[[Path], None] | None = None) -> Path:
    """Continue `run_dir` from checkpoints/latest.pt, with optional overrides (e.g. more steps)."""
    checkpoint = latest_checkpoint(run_dir)
    # Judged on the parsed keys, after seed aliases expand: `spd=2` is train.discriminator_steps.
    changed = config_lib.parse_overrides(list(overrides))
    fixed = [f"{section}.{key}" for section, keys in changed.items() if section not in ("train", "eval")
             for key in keys]
    if fixed:
        # The weights in the checkpoint were made by this data and model; changing them is a new run.
        raise GankitError(f"a resumed run can change only train.* and eval.* keys, not '{fixed[0]}'; "
                          "start a new run to change the data, model or loss.")
    with run_lock(run_dir):
        cfg = config_lib.from_dict(load_checkpoint(checkpoint)["config"])
        new = config_lib.with_overrides(cfg, list(overrides))
        for key, why in NOT_RESUMABLE.items():
            section, name = key.split(".")
            if getattr(getattr(new, section), name) != getattr(getattr(cfg, section), name):
                raise GankitError(f"a resumed run cannot change {key} ({why}); start a new run for that.")
        return train(new, run_dir, resume_from=checkpoint, on_start=on_start)
