"""The training loop: one function, with every feature plugged in as an object.

A step is one generator update, preceded by `train.discriminator_steps` discriminator updates;
each update sums the gradients of `train.gradient_accumulation` batches. Progress is counted in
real images shown to D (`images_seen`, kimg), which survives a change of batch size.
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
from gankit.config import Config
from gankit.data import build_dataset
from gankit.errors import GankitError, Stopped
from gankit.latent import build_prior
from gankit.losses import Batch, build_loss
from gankit.nets import Nets, build_nets
from gankit.penalties import build_penalties
from gankit.training.checkpoint import capture_rng, latest_checkpoint, load_checkpoint, load_weights, restore_rng
from gankit.training.distributed import (
    Engine,
    ForgetLosses,
    MeanOverRanks,
    device_for,
    finish,
    main_first,
    run_lock_of_main,
)
from gankit.training.ema import EMA
from gankit.training.eval_hook import Evaluator
from gankit.training.guard import DivergenceGuard, DivergencePolicy, NonFinite, check_finite
from gankit.training.hooks import Checkpointer, Hook, LossMeter, Progress, SampleGrid, StatsLogger
from gankit.training.resuming import NOT_RESUMABLE, check_data_shape, check_same_run, keep_old_config
from gankit.training.stop import GracefulStop, StopFlag
from gankit.utils import truncate_jsonl


def pick_device(name: str) -> torch.device:
    return device_for(name)  # one process; under torchrun each rank's device is chosen by Engine.start


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
    stop: StopFlag = field(default_factory=StopFlag)  # set by a signal: the loop ends after the current step
    rollbacks: int = 0  # divergence rollbacks so far (train.max_rollbacks caps them)
    engine: Engine = field(default_factory=Engine)  # this process's rank, device, DDP and precision

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def checkpoint(self) -> dict[str, Any]:
        check_finite(self)  # raises NonFinite: a checkpoint is never written from a diverged state
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "step": self.step, "images_seen": self.images_seen, "seconds": self.seconds(),
            "rng": {**capture_rng(), "noise": self.noise.get_state(), "data": self.loader.state_dict()},
            "config": config_lib.to_dict(self.cfg),
            # So that sampling needs neither the dataset on disk nor a rebuild of it.
            "data_shape": list(self.dataset.shape), "num_classes": int(self.dataset.num_classes),
            "rollbacks": self.rollbacks,
            # Every rank draws the same streams and keeps its rows (gankit.ranks), so rank 0's RNG
            # states and data position are every rank's; the world size tells a resume whether they fit.
            **self.engine.checkpoint_state(),
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
        self.rollbacks = int(payload.get("rollbacks", 0))
        self.step, self.images_seen = int(payload["step"]), int(payload["images_seen"])
        self.images_seen_at_start = self.images_seen
        self.seconds_before = float(payload.get("seconds", 0.0))
        restore_rng(payload["rng"])
        self.noise.set_state(payload["rng"]["noise"])
        self.loader.load_state_dict(payload["rng"]["data"])
        self.engine.restore(payload)


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
    prior = build_prior(cfg.model)
    grid = 4096 if len(dataset.shape) == 1 else cfg.train.grid_samples
    grid_noise = torch.Generator(device).manual_seed(cfg.train.seed + 1)
    fixed_labels = (torch.arange(grid, device=device) % dataset.num_classes) if dataset.num_classes else None
    return Run(
        cfg=cfg, run_dir=run_dir, dataset=dataset,
        loader=dataset.loader(cfg.train.batch_size, cfg.train.seed, device, engine.ranks),
        G=G, D=D, G_ema=G_ema, opt_G=opt_G, opt_D=opt_D,
        noise=torch.Generator(device).manual_seed(cfg.train.seed + 2),
        fixed_z=prior.sample(grid, grid_noise, device), fixed_labels=fixed_labels,
        images_per_step=cfg.train.batch_size * cfg.train.gradient_accumulation * cfg.train.discriminator_steps,
        engine=engine,
    )


def default_hooks(run: Run) -> list[Hook]:
    t = run.cfg.train
    # On every rank, on the same (averaged) loss sums, so that all ranks stop together.
    every_rank = [MeanOverRanks(run.engine, t.log_every)] if run.engine.distributed else []
    every_rank.append(DivergenceGuard(t.log_every))
    if not run.engine.is_main:
        return every_rank + [ForgetLosses(t.log_every)]  # files are rank 0's alone
    # Order matters: the guard before stats (it reads the loss sums the stats logger then empties),
    # stats before progress (which prints them), checkpoint last (it plots them).
    return every_rank + [
        StatsLogger(run.run_dir, t.log_every, run.step),
        Progress(t.steps, run.step, t.log_every),
        SampleGrid(run.run_dir, t.sample_every),
        Evaluator(run),  # eval.metrics every eval.every_kimg; best.pt; collapse detection
        Checkpointer(run.run_dir, t.checkpoint_every, t.keep_checkpoints),
    ]


def training_loop(run: Run, hooks: list[Hook]) -> None:
    cfg = run.cfg.train
    engine = run.engine  # DDP, no_sync and precision; each rank works on its rows of the global batch
    loss = build_loss(run.cfg.loss)
    prior = engine.share_prior(build_prior(run.cfg.model))
    ema = EMA(cfg.ema_halflife_kimg, cfg.batch_size * cfg.gradient_accumulation)
    augment: nn.Module = build_augment(cfg, run.dataset.shape)  # nn.Identity() unless train.augment
    penalties = engine.scale_penalties(build_penalties(run.cfg.loss))  # [] unless loss.penalties names some
    device = run.fixed_z.device
    nets = engine.wrap(Nets(G=run.G.train(), D=run.D.train()))

    while run.step < cfg.steps and not run.stop.requested:
        # Discriminator phase: D learns to tell real batches from G's current fakes.
        nets.G.requires_grad_(False)
        nets.D.requires_grad_(True)
        for _ in range(cfg.discriminator_steps):
            run.opt_D.zero_grad(set_to_none=True)
            for r in range(cfg.gradient_accumulation):
                with engine.round(nets.D, last=r + 1 == cfg.gradient_accumulation):
                    real, labels = run.loader.next()
                    z = prior.sample(len(real), run.noise, device)  # this rank's rows of the global batch
                    fake = nets.G(z, labels)  # fakes carry the real batch's labels when conditional
                    batch = Batch(real=augment(real), fake=augment(fake), z=z, labels=labels)
                    terms = loss.discriminator(nets, batch)
                    for penalty in penalties:
                        terms |= penalty(nets, batch, run.step)
                    engine.backward(sum(terms.values()) / cfg.gradient_accumulation, "D")
                run.meter.add(terms)
            engine.step(run.opt_D, "D")
            loss.after_discriminator_step(nets)
            run.images_seen += cfg.batch_size * cfg.gradient_accumulation

        # Generator phase: G learns to make D call its fakes real. It reuses the last real batch
        # (for labels, and for losses that compare with real data) rather than drawing another.
        nets.G.requires_grad_(True)
        nets.D.requires_grad_(False)
        run.opt_G.zero_grad(set_to_none=True)
        for r in range(cfg.gradient_accumulation):
            with engine.round(nets.G, last=r + 1 == cfg.gradient_accumulation):
                z = prior.sample(len(real), run.noise, device)
                batch = Batch(real=augment(real), fake=augment(nets.G(z, labels)), z=z, labels=labels)
                terms = loss.generator(nets, batch)
                engine.backward(sum(terms.values()) / cfg.gradient_accumulation, "G")
            run.meter.add(terms)
        engine.step(run.opt_G, "G")
        ema.update(run.G_ema, nets.G)

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
    engine = Engine.start(cfg.train)  # joins torchrun's process group when there is one
    with run_lock_of_main(run_dir):
        payload = load_checkpoint(resume_from) if resume_from else None
        if payload is not None:
            check_same_run(cfg, run_dir, payload, resume_from)
        run = build_run(cfg, run_dir, engine.device, engine=engine)
        if payload is not None:
            check_data_shape(run, payload, resume_from)
            run.restore(payload)
            if engine.is_main:
                if on_start is not None:  # e.g. the CLI's command.txt, written only once every check has passed
                    on_start(run_dir)
                truncate_jsonl(run_dir / "stats.jsonl", run.step)  # what was logged after the checkpoint is redone
                keep_old_config(run_dir, run.cfg, run.step)
        elif engine.is_main:
            config_lib.save(run.cfg, run_dir / "config.yaml")
        if engine.is_main:
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
        finish()
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
    with run_lock_of_main(run_dir):
        cfg = config_lib.from_dict(load_checkpoint(checkpoint)["config"])
        new = config_lib.with_overrides(cfg, list(overrides))
        for key, why in NOT_RESUMABLE.items():
            section, name = key.split(".")
            if getattr(getattr(new, section), name) != getattr(getattr(cfg, section), name):
                raise GankitError(f"a resumed run cannot change {key} ({why}); start a new run for that.")
        return train(new, run_dir, resume_from=checkpoint, on_start=on_start)
