"""The training loop: one function, with every feature plugged in as an object.

A step is `train.discriminator_steps` discriminator updates, then `train.generator_steps`
generator updates (one each unless set); each update sums the gradients of
`train.gradient_accumulation` batches. Progress is counted in real images shown to D
(`images_seen`, kimg), which survives a change of batch size.

The loop never calls G or the prior itself: the objective (the loss family) turns each real
batch into a `Batch`. G runs forward once per batch of the last D update; D trains on those
fakes detached, and G's first update reuses them with their graph, as the plain PyTorch DCGAN
loop does. Earlier D updates (train.discriminator_steps > 1) make their fakes without a graph;
later G updates make new ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from gankit import config as config_lib
from gankit.augment import build_augment
from gankit.checkpoint import latest_checkpoint, load_checkpoint
from gankit.config import Config
from gankit.errors import GankitError, Stopped
from gankit.nets import Nets
from gankit.penalties import build_penalties
from gankit.training.distributed import (
    AgreeOnStop,
    Engine,
    ForgetLosses,
    GatherRankStates,
    MeanOverRanks,
    finish,
    run_lock_of_main,
)
from gankit.training.ema import EMA
from gankit.training.eval_hook import Evaluator
from gankit.training.guard import DivergenceGuard, DivergencePolicy, NonFinite
from gankit.training.hooks import Checkpointer, Hook, Progress, SampleGrid, StatsLogger, end_all
from gankit.training.resuming import NOT_RESUMABLE, check_data_shape, check_same_run, keep_old_config
from gankit.training.run import Run, build_run
from gankit.training.stop import GracefulStop
from gankit.utils import remove_temp_files, truncate_jsonl


def default_hooks(run: Run) -> list[Hook]:
    t = run.cfg.train
    # On every rank: a signal stops all ranks after the same step; the guard judges the same
    # (averaged) loss sums, so that all ranks stop together; every rank's random states go into
    # rank 0's checkpoints.
    every_rank = ([AgreeOnStop(run.engine), MeanOverRanks(run.engine, t.log_every),
                   GatherRankStates(run.engine, t.checkpoint_every)] if run.engine.distributed else [])
    every_rank.append(DivergenceGuard(t.log_every))
    if not run.engine.is_main:
        return every_rank + [ForgetLosses(t.log_every)]  # files are rank 0's alone
    # Order matters: the guard before stats (it reads the loss sums the stats logger then empties),
    # stats before progress (which prints them), checkpoint last (it plots them).
    return every_rank + [
        StatsLogger(run.run_dir, t.log_every, run.step),
        Progress(t.steps, run.step, t.log_every),
        SampleGrid(run.run_dir, t.sample_every),
        *run.schedule.hooks(run),  # PGGAN: phase changes in stats.jsonl, samples/res-XX.png
        Evaluator(run),  # eval.metrics every eval.every_kimg; best.pt; collapse detection
        Checkpointer(run.run_dir, t.checkpoint_every, t.keep_checkpoints),
    ]


def training_loop(run: Run, hooks: list[Hook]) -> None:
    cfg = run.cfg.train
    engine = run.engine  # DDP, no_sync and precision; each rank works on its rows of the global batch
    objective = run.objective
    ema = EMA(cfg.ema_halflife_kimg)
    augment: nn.Module = build_augment(cfg, run.dataset.shape)  # nn.Identity() unless train.augment
    penalties = engine.scale_penalties(build_penalties(run.cfg.loss))  # [] unless loss.penalties names some
    # The objective calls these wrapped networks, so G's gradient syncs though G runs in make_batch.
    nets = engine.wrap(Nets(G=run.G.train(), D=run.D.train()))

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
            for r in range(cfg.gradient_accumulation):
                # G's round too: DDP decides at G's forward (here) whether G's backward all-reduces.
                with engine.round(nets.G, nets.D, last=r + 1 == cfg.gradient_accumulation):
                    real, labels = run.loader.next(phase.batch_size)  # this rank's rows of the global batch
                    with torch.set_grad_enabled(d_step == cfg.discriminator_steps - 1):
                        batch = objective.make_batch(nets, real, labels, run.noise, phase)
                    d_batch = batch.detached().augmented(augment)
                    terms = objective.discriminator(nets, d_batch)
                    for penalty in penalties:
                        terms |= penalty(nets, d_batch, run.step)
                    engine.backward(sum(terms.values()) / cfg.gradient_accumulation, "D")
                run.meter.add(terms)
                kept.append(batch)
                run.images_seen += len(real) * engine.ranks.world_size  # the global batch's rows
            engine.step(run.opt_D, "D")
            objective.after_discriminator_step(nets)

        # Generator phase: G learns to make the updated D call the same fakes real. A further G
        # update (train.generator_steps > 1) remakes them with the updated G from new noise, on
        # the same real rows (already at the phase's resolution, so no phase is passed again).
        nets.D.requires_grad_(False)
        for g_step in range(cfg.generator_steps):
            run.opt_G.zero_grad(set_to_none=True)
            # One backward over every round's fakes: G's forwards were all made before it, so under
            # DDP G's gradient must be all-reduced once, by a single backward, not once per round.
            with engine.round(nets.G, last=True):
                if g_step:
                    kept = [objective.make_batch(nets, b.real, b.labels, run.noise) for b in kept]
                rounds = [objective.generator(nets, batch.augmented(augment)) for batch in kept]
                engine.backward(sum(sum(terms.values()) for terms in rounds) / cfg.gradient_accumulation, "G")
            for terms in rounds:
                run.meter.add(terms)
            del rounds  # free G's graph before the next update or the hooks run
            engine.step(run.opt_G, "G")
        del kept, batch
        engine.sync_buffers()  # BatchNorm statistics: rank 0's on every rank, so EMA and checkpoints agree
        ema.update(run.G_ema, run.G, run.images_seen - images_before)  # half-life in logged images

        run.step += 1
        for hook in hooks:
            hook.on_step(run)

    end_all(hooks, run)  # each hook ends even if one before it fails: the final checkpoint is always written


def train(cfg: Config, run_dir: Path, resume_from: Path | None = None,
          on_start: Callable[[Path], None] | None = None) -> Path:
    """Train `cfg` into `run_dir`; with `resume_from`, continue from that checkpoint exactly.

    One process at a time: a second one on the same run directory is refused (`run_lock`).
    Raises Diverged (exit 3) when the run diverges and may not roll back, and Stopped after a
    signal, once latest.pt is saved."""
    run_dir = Path(run_dir)
    engine = Engine.start(cfg.train)  # joins torchrun's process group when there is one
    with run_lock_of_main(run_dir):
        if engine.is_main:
            remove_temp_files(run_dir)  # half-written files of a process killed mid-write
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
                with GracefulStop(shared=engine.distributed, speaks=engine.is_main) as run.stop:
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
