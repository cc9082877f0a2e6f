"""The training loop: one function, with every feature plugged in as an object.

A step is one generator update, preceded by `train.discriminator_steps` discriminator updates;
each update sums the gradients of `train.gradient_accumulation` batches. Progress is counted in
real images shown to D (`images_seen`, kimg), which survives a change of batch size.
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
from gankit.augment import build_augment
from gankit.config import Config
from gankit.data import build_dataset
from gankit.errors import GankitError
from gankit.latent import build_prior
from gankit.losses import Batch, build_loss
from gankit.nets import Nets, build_nets
from gankit.penalties import build_penalties
from gankit.training.checkpoint import capture_rng, latest_checkpoint, load_checkpoint, restore_rng
from gankit.training.ema import EMA
from gankit.training.eval_hook import Evaluator
from gankit.training.hooks import Checkpointer, Hook, LossMeter, Progress, SampleGrid, StatsLogger
from gankit.training.phases import Phase, Schedule, build_schedule


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
    noise: torch.Generator  # draws every z, so resuming restores the noise stream exactly
    fixed_z: torch.Tensor  # (grid, z_dim): the same noise in every sample grid
    fixed_labels: torch.Tensor | None
    images_per_step: int
    step: int = 0
    images_seen: int = 0
    images_seen_at_start: int = 0
    seconds_before: float = 0.0  # training time spent before this process (resumed runs)
    started: float = field(default_factory=time.perf_counter)
    meter: LossMeter = field(default_factory=LossMeter)
    last_stats: dict | None = None
    phase: Phase | None = None  # of the step in progress (or last taken): resolution, alpha, batch, lrs

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def checkpoint(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "step": self.step, "images_seen": self.images_seen, "seconds": self.seconds(),
            "rng": {**capture_rng(), "noise": self.noise.get_state(), "data": self.loader.state_dict()},
            "config": config_lib.to_dict(self.cfg),
            # So that sampling needs neither the dataset on disk nor a rebuild of it.
            "data_shape": list(self.dataset.shape), "num_classes": int(self.dataset.num_classes),
        }

    def restore(self, payload: dict[str, Any]) -> None:
        self.G.load_state_dict(payload["G"])
        self.D.load_state_dict(payload["D"])
        self.G_ema.load_state_dict(payload["G_ema"])
        self.opt_G.load_state_dict(payload["opt_G"])
        self.opt_D.load_state_dict(payload["opt_D"])
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
    nets = build_nets(cfg.model, dataset.shape, dataset.num_classes)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.preserve_format
    G = nets.G.to(device, memory_format=memory_format)
    D = nets.D.to(device, memory_format=memory_format)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G = make_optimizer(cfg.train.optimizer, G.parameters(), cfg.train.lr_G, cfg.train.betas)
    opt_D = make_optimizer(cfg.train.optimizer, D.parameters(), cfg.train.lr_D, cfg.train.betas)
    prior = build_prior(cfg.model)
    grid = 4096 if len(dataset.shape) == 1 else cfg.train.grid_samples
    grid_noise = torch.Generator(device).manual_seed(cfg.train.seed + 1)
    fixed_labels = (torch.arange(grid, device=device) % dataset.num_classes) if dataset.num_classes else None
    return Run(
        cfg=cfg, run_dir=run_dir, dataset=dataset,
        loader=dataset.loader(cfg.train.batch_size, cfg.train.seed, device),
        G=G, D=D, G_ema=G_ema, opt_G=opt_G, opt_D=opt_D,
        noise=torch.Generator(device).manual_seed(cfg.train.seed + 2),
        fixed_z=prior.sample(grid, grid_noise, device), fixed_labels=fixed_labels,
        # At the schedule's start (PGGAN's batch changes with the resolution); progress ETAs use it.
        images_per_step=(build_schedule(cfg).phase(0).batch_size * cfg.train.gradient_accumulation
                         * cfg.train.discriminator_steps),
    )


def default_hooks(run: Run) -> list[Hook]:
    t = run.cfg.train
    # Order matters: stats first (progress prints them), checkpoint last (it plots them).
    return [
        StatsLogger(run.run_dir, t.log_every),
        Progress(t.steps, run.step, t.log_every),
        SampleGrid(run.run_dir, t.sample_every),
        *build_schedule(run.cfg).hooks(run),  # PGGAN: phase changes in stats.jsonl, samples/res-XX.png
        Evaluator(run),  # eval.metrics every eval.every_kimg; best.pt; collapse detection
        Checkpointer(run.run_dir, t.checkpoint_every),
    ]


def training_loop(run: Run, hooks: list[Hook], schedule: Schedule | None = None) -> None:
    """Train `run` to cfg.train.steps; `schedule` replaces the config's (benchmarks pin a phase)."""
    cfg = run.cfg.train
    loss = build_loss(run.cfg.loss)
    prior = build_prior(run.cfg.model)
    schedule = schedule or build_schedule(run.cfg)  # the phase (lrs, resolution, alpha, batch) at each images_seen
    ema = EMA(cfg.ema_halflife_kimg)
    augment: nn.Module = build_augment(cfg, run.dataset.shape)  # nn.Identity() unless train.augment
    penalties = build_penalties(run.cfg.loss)  # [] unless loss.penalties names some
    device = run.fixed_z.device
    nets = Nets(G=run.G.train(), D=run.D.train())

    while run.step < cfg.steps:
        run.phase = phase = schedule.phase(run.images_seen)
        phase.apply(run)
        images_before = run.images_seen
        # Discriminator phase: D learns to tell real batches from G's current fakes.
        nets.G.requires_grad_(False)
        nets.D.requires_grad_(True)
        for _ in range(cfg.discriminator_steps):
            run.opt_D.zero_grad(set_to_none=True)
            for _ in range(cfg.gradient_accumulation):
                real, labels = run.loader.next(phase.batch_size)
                real = phase.real(real)  # at the phase's resolution, blended during a fade
                z = prior.sample(phase.batch_size, run.noise, device)
                fake = nets.G(z, labels)  # fakes carry the real batch's labels when conditional
                batch = Batch(real=augment(real), fake=augment(fake), z=z, labels=labels)
                terms = loss.discriminator(nets, batch)
                for penalty in penalties:
                    terms |= penalty(nets, batch, run.step)
                (sum(terms.values()) / cfg.gradient_accumulation).backward()
                run.meter.add(terms)
            run.opt_D.step()
            loss.after_discriminator_step(nets)
            run.images_seen += phase.batch_size * cfg.gradient_accumulation

        # Generator phase: G learns to make D call its fakes real. It reuses the last real batch
        # (for labels, and for losses that compare with real data) rather than drawing another.
        nets.G.requires_grad_(True)
        nets.D.requires_grad_(False)
        run.opt_G.zero_grad(set_to_none=True)
        for _ in range(cfg.gradient_accumulation):
            z = prior.sample(phase.batch_size, run.noise, device)
            batch = Batch(real=augment(real), fake=augment(nets.G(z, labels)), z=z, labels=labels)
            terms = loss.generator(nets, batch)
            (sum(terms.values()) / cfg.gradient_accumulation).backward()
            run.meter.add(terms)
        run.opt_G.step()
        ema.update(run.G_ema, nets.G, run.images_seen - images_before)  # half-life in logged images

        run.step += 1
        for hook in hooks:
            hook.on_step(run)

    for hook in hooks:
        hook.on_end(run)


def train(cfg: Config, run_dir: Path, resume_from: Path | None = None) -> Path:
    """Train `cfg` into `run_dir`; with `resume_from`, continue from that checkpoint exactly."""
    run_dir = Path(run_dir)
    device = pick_device(cfg.train.device)
    payload = load_checkpoint(resume_from) if resume_from else None
    run = build_run(cfg, run_dir, device)
    if payload is not None:
        run.restore(payload)
    config_lib.save(cfg, run_dir / "config.yaml")
    (run_dir / "metrics.jsonl").touch()
    training_loop(run, default_hooks(run))
    return run_dir


def resume(run_dir: Path, overrides: list[str] = ()) -> Path:
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
    cfg = config_lib.from_dict(load_checkpoint(checkpoint)["config"])
    cfg = config_lib.with_overrides(cfg, list(overrides))
    return train(cfg, run_dir, resume_from=checkpoint)
