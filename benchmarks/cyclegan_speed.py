"""CycleGAN's training step on this machine: ms per step at 64 and 128 px, at the paper's batch and a larger one.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cyclegan_speed.py [--sizes 64,128] [--batches 2,8]
                                                                  [--blocks 3] [--steps 3] [--threads 1]

The model is the paper's (Zhu et al. 2017): width 64, 6 residual blocks (its choice at 128 px and
below), two 70x70 PatchGANs, LSGAN + cycle + identity losses, the 50-fake pools, through
`training_loop` as `gankit train cyclegan-selfie2anime data.resolution=SIDE` runs it. gankit's
`train.batch_size` counts both domains, so batch 2 is the paper's batch of 1 (one A and one B
image). The images are random uint8 tensors in memory: the step's cost depends on their shape only.

The machine is shared, so every (size, batch) is timed in alternating blocks of `--steps` steps
in one process, the figure is the median block, and the ratios to the first configuration are
the numbers to compare across machines or loads. The load average before and after is printed
with them. Results go in the README.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gankit import config as config_lib
from gankit.checkpoint import pick_device
from gankit.data.base import ImageTensors
from gankit.data.unpaired import UnpairedImages
from gankit.training.loop import build_run, training_loop


def random_domain(n: int, side: int, seed: int) -> ImageTensors:
    generator = torch.Generator().manual_seed(seed)
    return ImageTensors(torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=generator), None, 0)


def cyclegan_run(side: int, batch: int, tmp: Path):
    cfg = config_lib.resolve("cyclegan-selfie2anime", [f"data.resolution={side}", f"train.batch_size={batch}",
                                                       "train.steps=1"])
    data = UnpairedImages(random_domain(64, side, seed=1), random_domain(64, side, seed=2))
    run = build_run(cfg, tmp / f"{side}-{batch}", pick_device(cfg.train.device), dataset=data)
    block(run, 1)  # warm-up: allocator, oneDNN kernel selection, pools start filling
    return run


def block(run, steps: int) -> float:
    """Seconds for `steps` more training steps of `run`."""
    run.cfg = config_lib.with_overrides(run.cfg, [f"train.steps={run.step + steps}"])
    start = time.perf_counter()
    training_loop(run, [])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128", help="image sides in px")
    parser.add_argument("--batches", default="2,8", help="train.batch_size values (half A, half B; 2 = the paper's)")
    parser.add_argument("--blocks", type=int, default=3, help="alternating timed blocks per configuration")
    parser.add_argument("--steps", type=int, default=3, help="training steps per block")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the shared machine: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configs = [(int(s), int(b)) for s in args.sizes.split(",") for b in args.batches.split(",")]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        runs = {c: cyclegan_run(*c, Path(tmp)) for c in configs}
        seconds: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
        for _ in range(args.blocks):
            for c in configs:
                seconds[c].append(block(runs[c], args.steps))
    load_after = os.getloadavg()[0]
    ms = {c: 1000 * statistics.median(seconds[c]) / args.steps for c in configs}
    base = configs[0]
    print(f"{torch.get_num_threads()} thread(s), load average {load_before:.2f} before, {load_after:.2f} after")
    print(f"{'px':>4} {'batch':>5} {'ms/step':>9} {'img/s':>7} {'ms/step ratio':>14}")
    for side, batch in configs:
        value = ms[side, batch]
        print(f"{side:>4} {batch:>5} {value:>9.0f} {1000 * batch / value:>7.1f} {value / ms[base]:>14.2f}")


if __name__ == "__main__":
    main()
