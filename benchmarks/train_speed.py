"""Training speed on this machine: ms per step and img/s for every preset's model at its default
batch size, and (with --channels-last-gain, --bf16-gain) the channels_last and bfloat16 autocast
gains, measured in one run so that the ratios are comparable.

    .venv/bin/python benchmarks/train_speed.py [--steps 20] [--presets dcgan-mnist,gan-ring8] [--bf16-gain]

A preset whose dataset is not on disk is timed on random tensors of the dataset's shape
(gankit.standin), marked "stand-in" in the output: the step cost depends on the shape only.

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
from gankit.checkpoint import pick_device
from gankit.data import build_dataset
from gankit.errors import GankitError
from gankit.standin import StandInImages
from gankit.training.loop import build_run, training_loop


def dataset_or_standin(cfg) -> tuple[object, bool]:
    """(dataset, True when it is a stand-in of random tensors)."""
    try:
        return build_dataset(cfg.data), False
    except GankitError:
        return StandInImages.for_config(cfg.data), True


def ms_per_step(preset: str, steps: int, extra: list[str], dataset=None) -> tuple[float, float]:
    """(ms per step, real images per second) over `steps` steps after 1 warm-up step."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_lib.resolve(preset, extra + ["train.steps=1"])
        run = build_run(cfg, Path(tmp), pick_device(cfg.train.device), dataset=dataset)
        training_loop(run, [])  # warm-up: allocator, oneDNN kernel selection
        run.cfg = config_lib.with_overrides(cfg, [f"train.steps={1 + steps}"])
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
    parser.add_argument("--channels-last-gain", action="store_true",
                        help="also time channels_last=false and print the ratio (doubles the run time)")
    parser.add_argument("--bf16-gain", action="store_true",
                        help="also time train.precision=fp32 and bf16 and print the ratio (triples the run time)")
    args = parser.parse_args()
    print(f"gankit --help: {help_seconds():.2f} s")
    print(f"{'preset':<26} {'model':<17} {'batch':>5} {'D/G':>3} {'ms/step':>9} {'img/s':>8}  data")
    for preset in args.presets.split(","):
        cfg = config_lib.resolve(preset)
        dataset, standin = dataset_or_standin(cfg)
        fast, rate = ms_per_step(preset, args.steps, ["train.channels_last=true"], dataset)
        note = f"stand-in {dataset.shape}" if standin else cfg.data.name
        if args.channels_last_gain:
            slow, _ = ms_per_step(preset, args.steps, ["train.channels_last=false"], dataset)
            note += f", channels_last gain {slow / fast:.2f}x"
        if args.bf16_gain:  # both timed here: the row itself runs at the preset's own precision
            fp32, _ = ms_per_step(preset, args.steps, ["train.precision=fp32"], dataset)
            bf16, _ = ms_per_step(preset, args.steps, ["train.precision=bf16"], dataset)
            note += f", bf16 gain {fp32 / bf16:.2f}x"
        print(f"{preset:<26} {cfg.model.name:<17} {cfg.train.batch_size:>5} {cfg.train.discriminator_steps:>3} "
              f"{fast:>9.1f} {rate:>8.0f}  {note}", flush=True)


if __name__ == "__main__":
    main()
