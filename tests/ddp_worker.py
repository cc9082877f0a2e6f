"""One rank of the 2-process jobs that test_distributed.py spawns, with torchrun's environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).

`python tests/ddp_worker.py OUT SCENARIO...` joins one gloo process group and runs each scenario
in it, so the processes start once (starting torch is most of the cost). gankit's own code writes
the run directories (rank 0 only); this harness writes only what the test reads back, under OUT.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from gankit import config as config_lib
from gankit.training.loop import resume, train

# name -> (preset, overrides): the runs test_distributed.py repeats in one process to compare.
EQUIVALENCE = {
    # BatchNorm-free MLP critic whose last layer has a bias (pytorch#47562), WGAN-GP, 5 D steps.
    "wgan-gp": ("wgan-gp-ring8", ["model.width=32", "train.batch_size=64"]),
    # A conv D without BatchNorm and lazy R1 on real MNIST digits held in memory.
    "r1": ("dcgan-mnist", ["model.width=4", "model.batchnorm_G=false", "model.batchnorm_D=false",
                           "loss.penalties=[r1]", "loss.r1_every=2", "train.batch_size=64"]),
    # The same global batch of 64 as two accumulated rounds of 32 (16 per rank and round).
    "r1-accumulated": ("dcgan-mnist", ["model.width=4", "model.batchnorm_G=false", "model.batchnorm_D=false",
                                       "loss.penalties=[r1]", "loss.r1_every=2", "train.batch_size=32",
                                       "train.gradient_accumulation=2"]),
}
# What 1 process x 64 runs to compare each with: r1-accumulated's is r1's.
REFERENCE = {"wgan-gp": "wgan-gp", "r1": "r1", "r1-accumulated": "r1"}
# Models whose losses call more than D(x) and G(z): D.logits_and_classes (ACGAN), G.reconstruct and
# D(x, labels, z) (VEEGAN), packed D inputs (PacGAN), with DiffAugment's per-sample draws.
ZOO = {
    "acgan-mnist": ["model.width=4", "train.batch_size=16", "train.augment=diffaugment"],
    "veegan-ring8": ["model.width=16", "train.batch_size=32"],
    "pacgan-grid25": ["model.width=16", "train.batch_size=32"],
    # A growing net: step 1 at 4 px leaves the 8 px blocks out of the graph, step 2 fades them in.
    "pggan-mnist": ["model.width=4", "model.max_width=8", "train.batch_size=16", "train.stable_kimg=0.016",
                    "train.fade_kimg=0.016", "train.batch_per_resolution={4: 16, 8: 16, 16: 16, 32: 16}"],
}
STEPS = ["train.steps=20", "train.log_every=20", "train.checkpoint_every=20", "train.sample_every=1000"]
RESUME = ("wgan-gp-ring8", ["model.width=16", "train.batch_size=32", "train.discriminator_steps=2",
                            "train.checkpoint_every=3", "train.log_every=1", "train.sample_every=100"])


@contextlib.contextmanager
def float64():
    """The equivalence runs train in float64. 2 ranks sum each gradient in another order than one
    process (two half-batch sums, then the all-reduce), so in float32 their weights differ by ~1e-7,
    and a ReLU-family kink turns that into ~1e-4: on the WGAN-GP model, in D update 3 of step 15,
    one sample's pre-activation of unit 13 of D's third LeakyReLU is 2e-8 from 0; the rounding puts
    it on the other side of the kink in the 2-rank run, its slope switches between 1 and 0.2, and
    that unit's gradient alone jumps by 3e-3 (weights then differ by up to 3e-4 at step 20). In float64
    the same 20 steps agree to 2e-16 on both models, so any real difference (a penalty gradient
    scaled by the world size, the same noise or data rows on both ranks, a skipped all-reduce) would
    stand out by ten orders of magnitude."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def equivalence(out: Path) -> None:
    with float64():
        for name, (preset, overrides) in EQUIVALENCE.items():
            train(config_lib.resolve(preset, STEPS + overrides), out / name)


def zoo(out: Path) -> None:
    for preset, overrides in ZOO.items():
        train(config_lib.resolve(preset, overrides + ["train.steps=2", "train.log_every=1"]), out / preset)


@contextlib.contextmanager
def rank_1_draws_on_its_own():
    """Rank 1 draws one more number from the global torch RNG with each data batch, so its random
    state differs from rank 0's (which gankit's own draws keep equal): a resume that gave every rank
    rank 0's state would then draw other GP interpolation weights on rank 1 and no longer be exact."""
    from gankit.data.base import SampledLoader

    plain = SampledLoader.next

    def next_and_draw(self, *args, **kwargs):
        batch = plain(self, *args, **kwargs)
        if dist.get_rank() == 1:
            torch.rand(1)
        return batch

    SampledLoader.next = next_and_draw
    try:
        yield
    finally:
        SampledLoader.next = plain


def resume_exact(out: Path) -> None:
    preset, overrides = RESUME
    with rank_1_draws_on_its_own():
        train(config_lib.resolve(preset, overrides + ["train.steps=6"]), out / "straight")
        train(config_lib.resolve(preset, overrides + ["train.steps=3"]), out / "stopped")
        resume(out / "stopped", ["train.steps=6"])


def ranks_agree(out: Path) -> None:
    """DCGAN with BatchNorm: after training, every rank holds the same G_ema (buffers included),
    RNG states and data position; and accumulation rounds all-reduce only on the last round."""
    from torch import nn
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    from gankit.checkpoint import capture_rng
    from gankit.nets import Nets
    from gankit.training.distributed import Engine
    from gankit.training.loop import build_run, training_loop

    cfg = config_lib.resolve("dcgan-mnist", ["model.width=4", "train.batch_size=32", "train.steps=3",
                                             "train.gradient_accumulation=2", "train.discriminator_steps=2"])
    engine = Engine.start(cfg.train)
    run = build_run(cfg, out, engine.device, engine=engine)
    training_loop(run, [])
    rank = engine.ranks.rank
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"G_ema": run.G_ema.state_dict(), "D": run.D.state_dict(), "rng": capture_rng(),
                "noise": run.noise.get_state(), "data": run.loader.state_dict()}, out / f"rank{rank}.pt")

    # Three accumulation rounds of a linear D: one all-reduce (the last round's), and the gradient
    # of the mean over both ranks' rows, as one process would compute it.
    torch.manual_seed(0)
    nets = engine.wrap(Nets(G=nn.Linear(2, 2), D=nn.Linear(2, 1)))
    reductions = []
    nets.D.register_comm_hook(None, lambda state, bucket: reductions.append(1) or allreduce_hook(state, bucket))
    x = torch.randn(3, 8, 2, generator=torch.Generator().manual_seed(1))  # 3 rounds of a global batch of 8
    for r in range(3):
        with engine.round(nets.D, last=r == 2):
            engine.backward((nets.D(x[r, rank * 4:(rank + 1) * 4]) ** 2).mean() / 3, "D")
    reference = nn.Linear(2, 1)
    reference.load_state_dict(engine.raw["D"].state_dict())
    (reference(x.reshape(-1, 2)) ** 2).mean().backward()
    torch.save({"reductions": len(reductions), "grad": engine.raw["D"].weight.grad,
                "reference_grad": reference.weight.grad}, out / f"rounds{rank}.pt")


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    for name in sys.argv[2:]:
        SCENARIOS[name](out / name)
    dist.barrier()
    dist.destroy_process_group()
    # As gankit's CLI does on a rank (see gankit.cli.main): gloo's threads may still be releasing
    # tensors, and one that needs the GIL during finalization aborts the process (rank 0 exited -6
    # once in CI after every scenario had passed).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


SCENARIOS = {"zoo": zoo, "equivalence": equivalence, "resume": resume_exact, "ranks-agree": ranks_agree}

if __name__ == "__main__":
    main()
