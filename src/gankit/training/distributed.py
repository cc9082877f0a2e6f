"""Multi-process training: `torchrun ... -m gankit train` or `gankit train PRESET --nproc N`.

The engine is PyTorch's own: a `torch.distributed` process group (NCCL when CUDA is present,
else gloo) and DistributedDataParallel. What gankit adds is what GAN training needs from it,
each part against a failure that public GAN frameworks have shown:
- G and D each get their own DDP wrapper around the raw module (one DDP around both raises
  "parameters not used"); the loop keeps the raw modules for EMA and checkpoints;
- gradient accumulation skips the all-reduce with `no_sync` around forward AND backward of every
  round but the last (stylegan2-ada's covers the forward only);
- BatchNorm buffers are broadcast from rank 0 after every step, so G, D, G's EMA and every
  checkpoint are the same on every rank;
- files are written by rank 0 only; the others wait at a barrier where they must;
- every rank's RNG states and data position go into each checkpoint (GatherRankStates), so a
  resume with as many ranks gives each its own back;
- a rank that fails stops the whole job with one sentence from rank 0 (FailureRelay), a signal
  to any rank stops every rank after the same step (AgreeOnStop), and a finished run leaves the
  process group on every rank together, so nothing hangs.
Which rows of each batch a rank trains on is `gankit.ranks`; how `--nproc` starts the ranks,
`gankit.training.launch`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import inspect
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gankit.checkpoint import pick_device
from gankit.errors import GankitError
from gankit.ranks import SINGLE, Ranks, ranks_from_env
from gankit.training.hooks import Hook
from gankit.training.precision import Precision

T = TypeVar("T")

# Rank 0 may evaluate (FID on 50k samples) while the others wait in their next collective; the
# default NCCL timeout (10 min) would kill such a run. Failures do not wait for it: see FailureRelay.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


def device_for(name: str, ranks: Ranks = SINGLE) -> torch.device:
    """`train.device` for this process: `auto`/`cuda` mean the GPU of its local rank."""
    device = pick_device(name)  # refuses a CUDA device this machine lacks
    if device.type == "cuda" and device.index is None and ranks.world_size > 1:
        device = pick_device(f"cuda:{ranks.local_rank}")
    return device


_OWN_GROUP = threading.Event()  # set when gankit created the process group, so it also ends it


def start(device_name: str) -> tuple[Ranks, torch.device]:
    """Join torchrun's process group (once per process) and pick this rank's device.

    A script that set up the process group itself keeps it: gankit then only uses it."""
    ranks = ranks_from_env()
    device = device_for(device_name, ranks)
    if ranks.world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
        _OWN_GROUP.set()
        RELAY.start(ranks)
    return (ranks_from_group() if dist.is_initialized() else ranks), device


def ranks_from_group() -> Ranks:
    env = ranks_from_env()
    return Ranks(dist.get_rank(), dist.get_world_size(), env.local_rank, env.local_world_size)


def finish() -> None:
    """Every rank leaves together, after rank 0's last files: the end of a run never hangs."""
    if not dist.is_initialized():
        return
    dist.barrier()
    if _OWN_GROUP.is_set():
        RELAY.stop()
        dist.destroy_process_group()
        _OWN_GROUP.clear()


def on_main(make: Callable[[], T]) -> T:
    """`make()` on rank 0 only (it creates a run directory, say); every rank gets its result."""
    if not dist.is_initialized():
        return make()
    box = [make() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run_lock_of_main(run_dir) -> contextlib.AbstractContextManager:
    """The run directory's lock (one writer at a time) is rank 0's: it alone writes the run."""
    from gankit.rundir import run_lock

    return run_lock(run_dir) if ranks_from_env().is_main else contextlib.nullcontext()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


# ---------------------------------------------------------------------------------------------
# Failures: one sentence from rank 0, exit 2, on every rank, with no hang.


class FailureRelay:
    """Carries the first failure of any rank to rank 0 through the rendezvous store.

    A failing rank cannot reach rank 0 through a collective (rank 0 is blocked in another one,
    and NCCL would wait for its timeout), so each rank runs a watcher thread on the store's
    failure key. The failing rank writes it; rank 0 prints the one sentence; every rank ends with
    the failure's exit code. The others acknowledge before they leave and rank 0 waits for that,
    because the store may live in rank 0's process and must outlast their last question to it.
    """

    KEY, COUNT, REPORTED, LEFT = "gankit/failure", "gankit/failures", "gankit/failure-reported", "gankit/left"

    def __init__(self) -> None:
        self.store = None
        self.ranks = SINGLE
        self.stopped = threading.Event()
        self.leaving = threading.Lock()
        self.watcher: threading.Thread | None = None

    def start(self, ranks: Ranks) -> None:
        from torch.distributed.distributed_c10d import _get_default_store

        self.store, self.ranks = _get_default_store(), ranks
        self.stopped.clear()
        self.watcher = threading.Thread(target=self._watch, name="gankit-failure-watch", daemon=True)
        self.watcher.start()

    def stop(self) -> None:
        """Ends the watcher before the process group goes. A daemon thread still inside a store
        call when the interpreter finalizes is made to exit as it retakes the GIL, and that unwinds
        through torch's C++ frames into std::terminate: a finished run exited -6 ("terminate called
        without an active exception"), and its core showed this thread there."""
        self.stopped.set()
        if self.watcher is not None and self.watcher is not threading.current_thread():
            self.watcher.join(timeout=30)
        self.watcher, self.store = None, None

    def _watch(self) -> None:
        store = self.store
        while not self.stopped.wait(0.2):
            try:
                if not store.check([self.KEY]):
                    continue
                failure = json.loads(store.get(self.KEY))
            except Exception:  # the store went away: the job is ending anyway
                return
            if failure["rank"] != self.ranks.rank:  # our own failure: the main thread reports it
                self._leave(failure["message"], failure["code"])

    def report(self, message: str, code: int) -> None:
        """Called on the failing rank, and ends its process (the main thread may not return to a
        teardown that would block on, or abort for, peers leaving at the same time)."""
        if self.store is None:  # not (yet) in a process group: each rank decides alone
            if self.ranks.is_main or ranks_from_env().is_main:
                print(f"error: {message}", file=sys.stderr, flush=True)
            return
        ranks = self.ranks
        if not ranks.is_main:
            message = f"rank {ranks.rank} of {ranks.world_size} failed: {message}"
        with contextlib.suppress(Exception):
            if self.store.add(self.COUNT, 1) == 1:  # the first failure is the one reported
                self.store.set(self.KEY, json.dumps({"rank": ranks.rank, "message": message, "code": code}))
        self._leave(message, code)

    def _leave(self, message: str, code: int) -> None:
        self.leaving.acquire()  # never released: the first of this rank's threads to get here speaks
        store, ranks = self.store, self.ranks
        with contextlib.suppress(Exception):
            if ranks.is_main:
                print(f"error: {message}", file=sys.stderr, flush=True)
                store.set(self.REPORTED, "1")
                deadline = time.monotonic() + 10
                while store.add(self.LEFT, 0) < ranks.world_size - 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
            else:
                store.wait([self.REPORTED], datetime.timedelta(seconds=30))  # rank 0 has printed
                store.add(self.LEFT, 1)
        sys.stdout.flush()
        os._exit(code)


RELAY = FailureRelay()


def report_failure(message: str, code: int) -> None:
    RELAY.report(message, code)


# ---------------------------------------------------------------------------------------------
# DDP around each network.


class _Calls(nn.Module):
    """What DDP wraps: routes its forward to any method of the network, so that a loss calling
    `D.logits_and_classes(x)` or `G.reconstruct(x)` still goes through DDP's gradient sync."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *args, ddp_method: str = "forward", **kwargs):
        return getattr(self.net, ddp_method)(*args, **kwargs)


class NetDDP(DistributedDataParallel):
    """DDP over one network that still answers to the network's own methods and attributes."""

    def __init__(self, net: nn.Module, device: torch.device):
        super().__init__(_Calls(net), device_ids=[device.index] if device.type == "cuda" else None,
                         forward_sync_buffers=False,  # Engine.sync_buffers broadcasts them once per step
                         # A growing net (PGGAN) leaves the blocks above its current resolution out of
                         # the graph; DDP must look for them each step instead of waiting for them.
                         find_unused_parameters=hasattr(net, "set_phase"))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module" or "module" not in self._modules:  # DDP itself is still being built
                raise
            value = getattr(self.module.net, name)
        if inspect.ismethod(value) and value.__self__ is self.module.net:
            return lambda *args, **kwargs: self(*args, ddp_method=name, **kwargs)
        return value  # plain attributes, such as D.needs_z


def _broadcast_buffers(module: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm statistics, spectral-norm vectors) to every rank, one
    collective per dtype."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for buffer in module.buffers():
        by_dtype.setdefault(buffer.dtype, []).append(buffer)
    for buffers in by_dtype.values():
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.broadcast(flat, src=0)
        offset = 0
        for b in buffers:
            b.copy_(flat[offset:offset + b.numel()].view_as(b))
            offset += b.numel()


class Engine:
    """How this process runs a step: its rank and device, DDP around G and D, and precision.

    The loop asks it for `wrap(nets)`, `round(net, last)` (no_sync plus autocast),
    `backward(loss, "D")` and `step(optimizer, "D")`; one process in fp32 is the plain case.
    """

    def __init__(self, ranks: Ranks = SINGLE, device: torch.device | str = "cpu", precision: str = "fp32",
                 sync_batchnorm: bool = False):
        self.ranks, self.device = ranks, torch.device(device)
        self.precision = Precision(precision, self.device)
        self.sync_batchnorm = sync_batchnorm
        if sync_batchnorm and self.device.type != "cuda":
            raise GankitError("train.sync_batchnorm=true needs CUDA: torch's SyncBatchNorm runs on GPUs only; "
                              "drop it on CPU.")
        self.raw: dict[str, nn.Module] = {}
        self.stop_group: dist.ProcessGroup | None = None  # AgreeOnStop's (None: the default group)
        # On rank 0: the step at which GatherRankStates last gathered, and every rank's RNG states
        # and data position then.
        self.gathered: tuple[int, list[dict[str, Any]]] | None = None

    @classmethod
    def start(cls, train_cfg) -> Engine:
        """Join the process group torchrun set up (if any) and build this rank's engine."""
        ranks, device = start(train_cfg.device)
        if ranks.world_size > 1 and train_cfg.on_divergence == "rollback":
            # A rollback restarts the loop on the ranks that saw the blow-up; under DDP all of them
            # would have to, in step, and that is not built yet.
            raise GankitError("train.on_divergence=rollback works with one process only; with several, use "
                              "stop and resume from the last good checkpoint with lower rates.")
        engine = cls(ranks, device, train_cfg.precision, train_cfg.sync_batchnorm)
        if ranks.world_size > 1 and dist.get_backend() != "gloo":
            # AgreeOnStop's flag is a CPU int: over gloo it costs a CUDA run no stream sync per step.
            engine.stop_group = dist.new_group(backend="gloo")
        return engine

    @property
    def is_main(self) -> bool:
        return self.ranks.is_main

    @property
    def distributed(self) -> bool:
        return self.ranks.world_size > 1

    def prepare(self, net: nn.Module) -> nn.Module:
        """Before the optimizer sees it: BatchNorm -> SyncBatchNorm when asked (same parameters)."""
        return nn.SyncBatchNorm.convert_sync_batchnorm(net) if self.sync_batchnorm else net

    def wrap(self, nets: T) -> T:
        """The same Nets with each network in its own DDP wrapper (unchanged for one process)."""
        changes = {}
        for field in dataclasses.fields(nets):
            net = getattr(nets, field.name)
            if isinstance(net, nn.Module):
                self.raw[field.name] = net
                # DDP syncs the parameters that require grad when it is built: all of them, though
                # the loop then switches each network off in the other's phase.
                changes[field.name] = NetDDP(net.requires_grad_(True), self.device) if self.distributed else net
        return dataclasses.replace(nets, **changes)

    def scale_penalties(self, penalties: list) -> list:
        """Penalties differentiate D: under fp16 they scale that gradient with D's scaler."""
        for penalty in penalties:
            penalty.grad_scaler = self.precision.scalers["D"]
        return penalties

    @contextlib.contextmanager
    def round(self, *nets: nn.Module, last: bool):
        """One accumulation round of `nets`: their forwards and backwards skip the all-reduce
        unless `last`, and the forwards run under autocast."""
        with contextlib.ExitStack() as stack:
            for net in nets:
                if not last and isinstance(net, DistributedDataParallel):
                    stack.enter_context(net.no_sync())
            stack.enter_context(self.precision.autocast())
            yield

    def backward(self, loss: torch.Tensor, net: str) -> None:
        self.precision.backward(loss, net)

    def step(self, optimizer: torch.optim.Optimizer, net: str) -> None:
        self.precision.step(optimizer, net)

    def sync_buffers(self) -> None:
        """Rank 0's buffers of every network to all ranks, once per training step after G's update:
        G's BatchNorm statistics move in D's phase (where G makes the step's fakes) and D's in G's.
        Not earlier: G's graph, alive from D's phase to G's backward, holds G's buffers, and an
        in-place copy into them would invalidate it."""
        if self.distributed:
            for module in self.raw.values():
                _broadcast_buffers(module)

    def average(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """The mean over ranks of each tensor (loss summaries: every rank logs the job's mean)."""
        if not self.distributed or not tensors:
            return tensors
        flat = torch.stack([t.detach().float().reshape(()) for t in tensors])
        dist.all_reduce(flat)
        return list((flat / self.ranks.world_size).unbind())

    def gather_rank_states(self, step: int, state: dict[str, Any]) -> None:
        """Every rank's `state` (RNG states, data position) to rank 0, for the checkpoints of `step`."""
        states = [None] * self.ranks.world_size if self.is_main else None
        dist.gather_object(state, states, dst=0)
        if self.is_main:
            self.gathered = (step, _share_equal_tensors(states))

    def checkpoint_state(self, step: int, rng: dict[str, Any]) -> dict[str, Any]:
        """What a checkpoint of `step` holds about the ranks; `rng` is this process's (rank 0's) states."""
        state = {"world_size": self.ranks.world_size, "precision": self.precision.state_dict()}
        if self.gathered is not None and self.gathered[0] == step:
            # Rank 0's own as of now: a hook between the gather and this checkpoint may have drawn.
            state["rng_per_rank"] = [rng, *self.gathered[1][1:]]
        return state

    def restore(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Restores the scalers; returns this rank's RNG states and data position to restore."""
        self.precision.load_state_dict(payload.get("precision", {}))
        saved = int(payload.get("world_size", 1))
        if saved != self.ranks.world_size:
            if self.is_main:
                warnings.warn(f"resuming a run trained on {saved} processes with {self.ranks.world_size}: it "
                              "continues with the same global batch and random streams, but is no longer "
                              "bit-exact.", stacklevel=2)
            return payload["rng"]  # rank 0's streams on every rank: each still keeps its own rows
        # Each rank its own. A checkpoint without them (best.pt between checkpoint steps, an older
        # gankit's) has rank 0's, which are every rank's unless a rank drew on its own.
        return payload.get("rng_per_rank", [payload["rng"]] * saved)[self.ranks.rank]


def _share_equal_tensors(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ranks draw the same streams (gankit.ranks), so most of their states are equal: where a
    rank's tensor equals rank 0's, use rank 0's object, and torch.save stores it once (an epoch's
    data order is one int64 per image, times the number of ranks otherwise)."""

    def share(ours: Any, first: Any) -> Any:
        if isinstance(ours, dict) and isinstance(first, dict):
            return {k: share(v, first.get(k)) for k, v in ours.items()}
        if isinstance(ours, list) and isinstance(first, list) and len(ours) == len(first):
            return [share(a, b) for a, b in zip(ours, first, strict=True)]
        if isinstance(ours, torch.Tensor) and isinstance(first, torch.Tensor) and ours.dtype == first.dtype \
                and ours.shape == first.shape and torch.equal(ours, first):
            return first
        return ours

    return [states[0], *(share(state, states[0]) for state in states[1:])]


def main_first(make: Callable[[], T]) -> T:
    """`make()` on rank 0, then on the others: rank 0 alone builds a shared cache (a dataset's HDF5
    file), and the others read it."""
    if not dist.is_initialized() or dist.get_rank() == 0:
        result = make()
        barrier()
        return result
    barrier()
    return make()


class AgreeOnStop(Hook):
    """On every rank, every step: the signal any rank received since, so that all ranks end the
    loop after the same step (gankit.training.stop). One all-reduce of one int per step."""

    def __init__(self, engine: Engine):
        self.group = engine.stop_group

    def on_step(self, run) -> None:
        flag = torch.tensor([run.stop.received or 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group)
        agreed = int(flag.item())  # a CPU tensor: no device sync
        if agreed:
            run.stop.signum = agreed


class MeanOverRanks(Hook):
    """On every rank, before rank 0's StatsLogger reads them: the loss sums become their mean
    over ranks, so stats.jsonl logs the job's losses, not rank 0's share of them."""

    def __init__(self, engine: Engine, every: int):
        self.engine, self.every = engine, every

    def on_step(self, run) -> None:
        if run.step % self.every and run.step != run.cfg.train.steps:
            return
        names = sorted(run.meter.sums)  # the same terms, in the same order, on every rank
        for name, mean in zip(names, self.engine.average([run.meter.sums[n] for n in names]), strict=True):
            run.meter.sums[name] = mean


class GatherRankStates(Hook):
    """On every rank, before rank 0's Checkpointer: at each step that writes checkpoints (every
    train.checkpoint_every steps, and the end), every rank's RNG states and data position go to
    rank 0, which saves them all (`rng_per_rank`); a resume with as many ranks gives each its own.
    Ranks draw the same streams by design, but a rank that draws on its own (a user's hook, an
    augmentation with per-rank state) must still resume exactly."""

    def __init__(self, engine: Engine, every: int):
        self.engine, self.every = engine, every
        self.last_step: int | None = None  # the same on every rank, so all of them gather, or none

    def on_step(self, run) -> None:
        if run.step % self.every == 0:
            self._gather(run)

    def on_end(self, run) -> None:
        if self.last_step != run.step:  # latest.pt at the end
            self._gather(run)

    def _gather(self, run) -> None:
        self.engine.gather_rank_states(run.step, run.rng_state())
        self.last_step = run.step


class ForgetLosses(Hook):
    """Last on ranks other than 0, where no StatsLogger empties the loss sums once the
    divergence guard has read them: start the next logging window."""

    def __init__(self, every: int):
        self.every = every

    def on_step(self, run) -> None:
        if run.step % self.every == 0 or run.step == run.cfg.train.steps:
            run.meter.reset()

