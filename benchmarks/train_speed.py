"""Training speed on this machine: ms per step and img/s for each preset's model, and the
channels_last gain, measured in one run so that the ratios are comparable.

    .venv/bin/python benchmarks/train_speed.py [--steps 20] [--presets dcgan-mnist,gan-ring8]

Also times `gankit --help` (target: under 0.5 s, no torch import). Results go in the README.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gankit import config as config_lib
from gankit.training.loop import build_run, pick_device, training_loop


def ms_per_step(preset: str, steps: int, extra: list[str]) -> tuple[float, float]:
    """(ms per step, real images per second) over `steps` steps after 3 warm-up steps."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_lib.resolve(preset, extra + ["train.steps=3"])
        run = build_run(cfg, Path(tmp), pick_device(cfg.train.device))
        training_loop(run, [])  # warm-up: allocator, oneDNN kernel selection
        run.cfg = config_lib.with_overrides(cfg, [f"train.steps={3 + steps}"])
        start = time.perf_counter()
        training_loop(run, [])
        elapsed = time.perf_counter() - start
    return 1000 * elapsed / steps, steps * run.images_per_step / elapsed


def help_seconds(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gankit", "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--presets", default=",".join(n for n, _ in config_lib.list_presets()))
    args = parser.parse_args()
    print(f"gankit --help: {help_seconds():.2f} s")
    print(f"{'preset':<28} {'batch':>5} {'ms/step':>9} {'img/s':>8} {'channels_last gain':>19}")
    for preset in args.presets.split(","):
        cfg = config_lib.resolve(preset)
        try:
            fast, rate = ms_per_step(preset, args.steps, ["train.channels_last=true"])
            slow, _ = ms_per_step(preset, args.steps, ["train.channels_last=false"])
        except Exception as exc:  # a preset whose dataset is absent here
            print(f"{preset:<28} skipped: {exc}")
            continue
        print(f"{preset:<28} {cfg.train.batch_size:>5} {fast:>9.1f} {rate:>8.0f} {slow / fast:>18.2f}x")


if __name__ == "__main__":
    main()
