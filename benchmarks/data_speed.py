"""Is data loading ever the bottleneck? Data time per batch of 64 as a fraction of a DCGAN step.

    .venv/bin/python benchmarks/data_speed.py [--steps 30] [--images 2048]

Measured in one run, for `mnist5k` at 28 px and for a folder of 32 px RGB images written here
(PNG files, 48x48, centre-cropped and resized), both in memory (the default for small data) and
streamed from the HDF5 cache through DataLoader workers (what a dataset over the memory budget
gets). "data" is the time training spends inside `loader.next()`, measured during real training
steps, so prefetching by workers counts as it should. The goal is under 5%. Results go in the
README.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from gankit import config as config_lib
from gankit.checkpoint import pick_device
from gankit.training.loop import build_run, training_loop


class TimedLoader:
    """Wraps a loader and adds up the seconds spent waiting for batches."""

    def __init__(self, loader):
        self.loader, self.seconds, self.batches = loader, 0.0, 0

    def next(self):
        start = time.perf_counter()
        batch = self.loader.next()
        self.seconds += time.perf_counter() - start
        self.batches += 1
        return batch

    def state_dict(self):
        return self.loader.state_dict()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)


def measure(overrides: list[str], steps: int) -> tuple[float, float]:
    """(ms of data per batch, ms per training step) over `steps` steps after 3 warm-up steps."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_lib.resolve("dcgan-mnist", overrides + ["train.steps=3", "train.batch_size=64"])
        run = build_run(cfg, Path(tmp), pick_device(cfg.train.device))
        run.loader = TimedLoader(run.loader)
        training_loop(run, [])  # warm-up: allocator, oneDNN kernels, worker start-up
        run.loader.seconds, run.loader.batches = 0.0, 0
        run.cfg = config_lib.with_overrides(cfg, [f"train.steps={3 + steps}"])
        start = time.perf_counter()
        training_loop(run, [])
        elapsed = time.perf_counter() - start
    return 1000 * run.loader.seconds / run.loader.batches, 1000 * elapsed / steps


def write_folder(folder: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for i in range(n):  # smooth-ish images, so PNG sizes are realistic rather than noise-sized
        small = np.roll(base, i, axis=(0, 1)) // 2 + rng.integers(0, 128, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((48, 48), Image.BILINEAR).save(folder / f"{i:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--images", type=int, default=2048)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        write_folder(folder, args.images)
        folder_keys = ["data.name=imagefolder", f"data.path={folder}", f"data.root={tmp}", "data.resolution=32",
                       "data.channels=3"]
        start = time.perf_counter()
        from gankit.data.prepare import prepare

        prepare("imagefolder", 32, [k.removeprefix("data.") for k in folder_keys[1:]])
        cache_rate = args.images / (time.perf_counter() - start)
        cases = [
            ("mnist5k 28 px, in memory", ["data.name=mnist5k"]),
            ("image folder 32 px, in memory", folder_keys),
            ("image folder 32 px, streamed", folder_keys + ["data.in_memory_budget_mb=0"]),
        ]
        print(f"cache build (decode, crop, resize, write): {cache_rate:.0f} images/s")
        print(f"{'dataset':<32} {'data ms/batch':>13} {'step ms':>8} {'data share':>10}")
        for name, overrides in cases:
            data_ms, step_ms = measure(overrides, args.steps)
            print(f"{name:<32} {data_ms:>13.2f} {step_ms:>8.1f} {100 * data_ms / step_ms:>9.2f}%")


if __name__ == "__main__":
    main()
