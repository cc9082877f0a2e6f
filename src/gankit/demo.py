"""`make demo`: train a 2-D GAN and an MNIST DCGAN on offline data, then say where to look.

Step counts are sized so that both runs finish in about six minutes on 2 CPU cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gankit import config as config_lib
from gankit.rundir import create_run_dir
from gankit.training.loop import train

DEMO_RUNS = [
    ("gan-ring8", ["train.steps=2000"]),
    ("dcgan-mnist", []),
]


def main(out: Path = Path("runs")) -> None:
    for preset, overrides in DEMO_RUNS:
        cfg = config_lib.resolve(preset, overrides)
        run_dir = create_run_dir(out, None, preset)
        print(f"\n== {preset}: {cfg.description}\n   training {cfg.train.steps} steps into {run_dir}", flush=True)
        start = time.perf_counter()
        train(cfg, run_dir)
        grids = sorted((run_dir / "samples").glob("*.png"))
        print(f"   done in {time.perf_counter() - start:.0f} s", flush=True)
        print(f"   last sample grid : {grids[-1]}")
        print(f"   loss curves      : {run_dir / 'plots' / 'losses.png'}")
        print(f"   checkpoints      : {run_dir / 'checkpoints'}")
        print(f"   stats            : {run_dir / 'stats.jsonl'} (TensorBoard: tensorboard --logdir {out})")
    print(f"\nSample more with: .venv/bin/gankit sample {run_dir} --n 64 --out digits.png")


if __name__ == "__main__":
    from gankit.errors import GankitError

    try:
        main()
    except GankitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
