"""gankit's training loop against a plain PyTorch loop on the same DCGAN modules.

    .venv/bin/python benchmarks/loop_speed.py [--blocks 5] [--steps 5] [--sizes 28,32,64]

The plain loop has the structure of the PyTorch DCGAN tutorial: one G forward per step,
`fake.detach()` for D, the same fakes for G's update, Adam, the non-saturating loss, and an EMA of
G. Both loops get the same modules (same init), batch 64 and the same in-memory uint8 images. The
machine is shared, so the two are timed in alternating blocks of `--steps` steps in one process,
and the figure is the median over blocks of plain ms / gankit ms (above 1: gankit is faster).
Results go in the README; CycleGAN's ms per step is `benchmarks/cyclegan_speed.py`.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit import config as config_lib
from gankit.checkpoint import pick_device
from gankit.data.base import ImageTensors
from gankit.training.loop import build_run, training_loop

PRESET_AT = {28: ("dcgan-mnist", 1), 32: ("dcgan-cifar10", 3), 64: ("dcgan-celeba", 3)}


def random_images(n: int, channels: int, side: int, seed: int) -> ImageTensors:
    generator = torch.Generator().manual_seed(seed)
    return ImageTensors(torch.randint(0, 256, (n, channels, side, side), dtype=torch.uint8, generator=generator),
                        None, 0)


class PlainLoop:
    """The tutorial's loop, written out: what a researcher would write without a framework."""

    def __init__(self, G, D, loader, z_dim: int, lr: float, betas, ema_beta: float, device):
        self.G, self.D, self.loader, self.z_dim, self.device = G.train(), D.train(), loader, z_dim, device
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
        self.ema_beta = ema_beta

    def steps(self, n: int) -> None:
        for _ in range(n):
            real, _ = self.loader.next()
            fake = self.G(torch.randn(len(real), self.z_dim, device=self.device))
            self.opt_D.zero_grad(set_to_none=True)
            d_loss = F.softplus(-self.D(real)).mean() + F.softplus(self.D(fake.detach())).mean()
            d_loss.backward()
            self.opt_D.step()
            self.opt_G.zero_grad(set_to_none=True)
            F.softplus(-self.D(fake)).mean().backward()
            self.opt_G.step()
            with torch.no_grad():
                for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                    p_ema.lerp_(p, 1 - self.ema_beta)
                for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                    b_ema.copy_(b)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def gankit_block(run, steps: int) -> None:
    run.cfg = config_lib.with_overrides(run.cfg, [f"train.steps={run.step + steps}"])
    training_loop(run, [])


def compare(side: int, blocks: int, steps: int, tmp: Path) -> tuple[float, float, float]:
    """(median plain/gankit ratio, gankit ms/step, plain ms/step) at `side` px, batch 64."""
    preset, channels = PRESET_AT[side]
    cfg = config_lib.resolve(preset, ["train.batch_size=64", "train.steps=1"])
    device = pick_device(cfg.train.device)
    data = random_images(2048, channels, side, seed=0)
    run = build_run(cfg, tmp, device, dataset=data)
    G, D = copy.deepcopy(run.G), copy.deepcopy(run.D)  # the same initial weights for both loops
    G, D = G.to(memory_format=torch.contiguous_format), D.to(memory_format=torch.contiguous_format)
    ema_beta = 0.5 ** (64 / (cfg.train.ema_halflife_kimg * 1000))
    plain = PlainLoop(G, D, data.loader(64, 0, device), cfg.model.z_dim, cfg.train.lr_G,
                      tuple(cfg.train.betas), ema_beta, device)
    gankit_block(run, 1)  # warm-ups: allocator, oneDNN kernel selection
    plain.steps(1)
    ratios, ours, theirs = [], [], []
    for _ in range(blocks):
        t_gankit = timed(lambda: gankit_block(run, steps))
        t_plain = timed(lambda: plain.steps(steps))
        ratios.append(t_plain / t_gankit)
        ours.append(t_gankit)
        theirs.append(t_plain)
    return statistics.median(ratios), 1000 * statistics.median(ours) / steps, 1000 * statistics.median(theirs) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=5, help="alternating timed blocks per size")
    parser.add_argument("--steps", type=int, default=5, help="training steps per block")
    parser.add_argument("--sizes", default="28,32,64")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'px':>4} {'gankit ms/step':>15} {'plain ms/step':>14} {'plain/gankit':>13}")
        for side in (int(s) for s in args.sizes.split(",") if s):
            ratio, ours, theirs = compare(side, args.blocks, args.steps, Path(tmp))
            print(f"{side:>4} {ours:>15.1f} {theirs:>14.1f} {ratio:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
