"""Data-parallel speed on this machine: img/s of 1 and 2 processes (gloo, CPU), each with 1 or
2 intra-op threads, for the same global batch.

    .venv/bin/python benchmarks/ddp_speed.py [--preset dcgan-mnist] [--steps 20] [--rounds 3]

The four set-ups run in alternating blocks, `--rounds` times, in one invocation (the machine is
shared and noisy: compare the ratios, not the absolute figures); the median of each is printed
with its ratio to 1 process x 1 thread. 2 processes x 1 thread against 1 process x 2 threads
uses the same 2 cores: the difference is the all-reduce of G's and D's gradients plus the
per-process overheads. Results go in the README. GPU scaling is not measured here (no GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETUPS = [(1, 1), (1, 2), (2, 1), (2, 2)]  # (processes, threads per process)


def worker(preset: str, steps: int, overrides: list[str]) -> None:
    """One rank: 1 warm-up step, then `steps` timed steps between barriers."""
    import torch.distributed as dist

    from gankit import config as config_lib
    from gankit.training.distributed import Engine, barrier, finish
    from gankit.training.loop import build_run, training_loop

    cfg = config_lib.resolve(preset, overrides + ["train.steps=1"])
    engine = Engine.start(cfg.train)
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(cfg, Path(tmp), engine.device, engine=engine)
        training_loop(run, [])  # warm-up: allocator, oneDNN kernels, DDP buckets
        run.cfg = config_lib.with_overrides(cfg, [f"train.steps={1 + steps}"])
        barrier()
        start = time.perf_counter()
        training_loop(run, [])
        barrier()
        elapsed = time.perf_counter() - start
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(json.dumps({"img_per_s": steps * run.images_per_step / elapsed}), flush=True)
    finish()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(processes: int, threads: int, args) -> float:
    port = str(_free_port())
    procs = []
    for rank in range(processes):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        if processes > 1:  # what torchrun sets
            env.update(RANK=str(rank), WORLD_SIZE=str(processes), LOCAL_RANK=str(rank),
                       LOCAL_WORLD_SIZE=str(processes), MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        command = [sys.executable, __file__, "--worker", "--preset", args.preset, "--steps", str(args.steps),
                   *args.overrides]
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a worker failed for {processes} processes x {threads} threads")
    return json.loads(outputs[0].strip().splitlines()[-1])["img_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="dcgan-mnist")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.batch_size=128")
    args = parser.parse_args()
    if args.worker:
        worker(args.preset, args.steps, args.overrides)
        return
    rates: dict[tuple[int, int], list[float]] = {setup: [] for setup in SETUPS}
    for _ in range(args.rounds):
        for setup in SETUPS:
            rates[setup].append(measure(*setup, args))
    base = statistics.median(rates[(1, 1)])
    print(f"{args.preset} {' '.join(args.overrides)}: global batch fixed, {args.steps} steps, "
          f"median of {args.rounds} alternating rounds")
    print(f"{'processes':>9} {'threads each':>12} {'img/s':>8} {'vs 1x1':>7}")
    for (processes, threads), values in rates.items():
        rate = statistics.median(values)
        print(f"{processes:>9} {threads:>12} {rate:>8.0f} {rate / base:>6.2f}x")


if __name__ == "__main__":
    main()
