"""A training run's state: networks, optimizers, data, noise and counters, built from a config.

`Run` is everything a hook may read or save; `Run.checkpoint()`/`Run.restore()` are the two ends
of exact resume. `build_run` makes one from a config and its seed, identically on every rank.
The loop that trains a Run is `gankit.training.loop`.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit import config as config_lib
from gankit.checkpoint import capture_rng, load_weights, restore_rng
from gankit.config import Config
from gankit.data import build_dataset
from gankit.losses import Objective, build_objective
from gankit.nets import build_nets
from gankit.training.distributed import Engine, main_first
from gankit.training.guard import check_finite
from gankit.training.hooks import LossMeter
from gankit.training.schedule import Phase, Schedule, build_schedule
from gankit.training.stop import StopFlag


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
    engine: Engine = field(default_factory=Engine)  # this process's rank, device, DDP and precision

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def rng_state(self) -> dict[str, Any]:
        """This process's random streams and data position: with the weights, what exact resume needs."""
        return {**capture_rng(), "noise": self.noise.get_state(), "data": self.loader.state_dict()}

    def checkpoint(self) -> dict[str, Any]:
        check_finite(self)  # raises NonFinite: a checkpoint is never written from a diverged state
        rng = self.rng_state()
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "objective": self.objective.state_dict(), "schedule": self.schedule.state_dict(),
            "step": self.step, "images_seen": self.images_seen, "seconds": self.seconds(),
            "rng": rng,
            "config": config_lib.to_dict(self.cfg),
            # So that sampling needs neither the dataset on disk nor a rebuild of it.
            "data_shape": list(self.dataset.shape), "num_classes": int(self.dataset.num_classes),
            "rollbacks": self.rollbacks,
            # Under several processes, every rank's RNG states and data position too (rng_per_rank);
            # the world size tells a resume whether they fit.
            **self.engine.checkpoint_state(self.step, rng),
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
        # Rebuilt from the config too: a rollback halves the rates the schedule applies each step.
        self.schedule = build_schedule(self.cfg, self.schedule.images_per_step)
        self.schedule.load_state_dict(payload.get("schedule", {}))
        self.rollbacks = int(payload.get("rollbacks", 0))
        self.step, self.images_seen = int(payload["step"]), int(payload["images_seen"])
        self.images_seen_at_start = self.images_seen
        self.seconds_before = float(payload.get("seconds", 0.0))
        rng = self.engine.restore(payload)  # this rank's own, when the checkpoint has as many ranks
        restore_rng(rng)
        self.noise.set_state(rng["noise"])
        self.loader.load_state_dict(rng["data"])


def build_run(cfg: Config, run_dir: Path, device: torch.device, dataset: Any = None,
              engine: Engine | None = None) -> Run:
    """Networks, optimizers, data and fixed noise for `cfg`, initialised from its seed.

    `dataset` replaces `cfg.data`'s dataset (benchmarks time a model on stand-in tensors).
    Every rank of a multi-process run builds the same, from the same seed."""
    engine = engine or Engine(device=device, precision=cfg.train.precision)
    seed_everything(cfg.train.seed)
    dataset = dataset if dataset is not None else main_first(lambda: build_dataset(cfg.data))
    cfg = config_lib.steps_from_epochs(cfg, dataset)  # train.epochs, when set, counted over this dataset
    nets = build_nets(cfg.model, dataset.shape, dataset.num_classes)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.preserve_format
    G = engine.prepare(nets.G.to(device, memory_format=memory_format))
    D = engine.prepare(nets.D.to(device, memory_format=memory_format))
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
        loader=dataset.loader(cfg.train.batch_size, cfg.train.seed, device, engine.ranks),
        G=G, D=D, G_ema=G_ema, opt_G=opt_G, opt_D=opt_D,
        objective=objective, schedule=schedule, device=device,
        noise=torch.Generator(device).manual_seed(cfg.train.seed + 2),
        preview_inputs=objective.preview_inputs(dataset, cfg.train.grid_samples, cfg.train.seed + 1, device),
        images_per_step=images_per_step, engine=engine,
    )
