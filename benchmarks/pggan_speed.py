"""PGGAN speed on this machine: ms per step of `pggan-mnist` at each resolution of its growth
(stable phases, the preset's batch per resolution), timed in alternating blocks in one run so
the per-resolution ratios survive a noisy shared machine; and, given a finished run directory,
the whole run's wall time and its ms/step per stage as logged in stats.jsonl.

    .venv/bin/python benchmarks/pggan_speed.py [--steps 10] [--rounds 2] [--preset pggan-mnist] [--run RUN_DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gankit import config as config_lib
from gankit.checkpoint import pick_device
from gankit.training.loop import build_run, training_loop
from gankit.training.schedule import Phase, Schedule, growth_resolutions
from gankit.utils import read_jsonl


class Pinned(Schedule):
    """One stable phase at `resolution`, for timing."""

    def __init__(self, cfg, resolution: int):
        t = cfg.train
        super().__init__(t, t.batch_size)
        self.fixed = Phase(t.lr_G, t.lr_D, f"stable {resolution}", t.batch_per_resolution.get(resolution, t.batch_size),
                           resolution)

    def phase(self, images_seen: int) -> Phase:
        return self.fixed


def time_resolutions(preset: str, steps: int, rounds: int, extra: list[str]) -> dict[int, list[float]]:
    cfg = config_lib.resolve(preset, extra)
    times: dict[int, list[float]] = {r: [] for r in growth_resolutions(cfg.data.resolution)}
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(cfg, Path(tmp), pick_device(cfg.train.device))
        for r in times:  # warm-up at every resolution: allocator, oneDNN kernel selection
            run.cfg = config_lib.with_overrides(cfg, [f"train.steps={run.step + 1}"])
            run.schedule = Pinned(cfg, r)
            training_loop(run, [])
        for _ in range(rounds):
            for r in times:
                run.cfg = config_lib.with_overrides(cfg, [f"train.steps={run.step + steps}"])
                start = time.perf_counter()
                run.schedule = Pinned(cfg, r)
                training_loop(run, [])
                times[r].append(1000 * (time.perf_counter() - start) / steps)
    return times


def run_report(run_dir: Path) -> None:
    records = read_jsonl(run_dir / "stats.jsonl")
    steps = [r for r in records if "event" not in r]
    phases = [r for r in records if r.get("event") == "phase"]
    print(f"\n{run_dir}: {steps[-1]['step']} steps, {steps[-1]['kimg']:.1f} kimg, "
          f"{steps[-1]['seconds'] / 60:.1f} min of training")
    for phase, following in zip(phases, phases[1:] + [None], strict=True):
        end_step = following["step"] if following else steps[-1]["step"]
        inside = [r for r in steps if phase["step"] <= r["step"] <= end_step]
        if len(inside) >= 2:
            ms = 1000 * (inside[-1]["seconds"] - inside[0]["seconds"]) / (inside[-1]["step"] - inside[0]["step"])
            print(f"  {phase['stage']:<10} batch {phase['batch_size']:>3}  steps {phase['step']:>5}-{end_step:<5} "
                  f"{ms:7.0f} ms/step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="pggan-mnist")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--run", type=Path, help="a finished run directory to report on")
    args = parser.parse_args()
    times = time_resolutions(args.preset, args.steps, args.rounds, ["train.channels_last=true"])
    base = min(times[4])
    print(f"{'resolution':>10} {'batch':>5} {'ms/step (best of rounds)':>26} {'vs 4 px':>8}")
    cfg = config_lib.resolve(args.preset)
    for r, values in times.items():
        batch = cfg.train.batch_per_resolution.get(r, cfg.train.batch_size)
        print(f"{r:>8}px {batch:>5} {min(values):>26.0f} {min(values) / base:>7.1f}x")
    if args.run:
        run_report(args.run)


if __name__ == "__main__":
    main()
