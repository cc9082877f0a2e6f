"""Do runs survive? kill -9 and SIGTERM at random moments, then resume to the end.

    .venv/bin/python benchmarks/survival.py [--kills 20] [--terms 10] [--steps 1500] [--seed 0]

One ring8 run (checkpoint every 25 steps, a loss plot with each, stats every 10, grids every
100) is killed with SIGKILL `--kills` times at random moments once its loop is running (so
the kill lands in a step, a checkpoint write or a plot), and resumed each time; then
trained to the end. A second run gets `--terms` SIGTERMs instead. Both are compared with the
same run trained without a stop. Reported:
- checkpoint files loadable / total, and temp files left behind;
- stats.jsonl: steps logged twice, and backward jumps (goal: 0 and 0);
- whether the final G, D, G_ema and both optimizer states are bit-identical (goal: yes);
- SIGTERM: steps lost per signal = the step the run announced it stopped at minus the step of
  the latest.pt it saved (goal: 0: nothing beyond the step in flight).
Results go in the README ("When things go wrong").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

COMMON = ["gan-ring8", "train.batch_size=64", "model.width=64", "train.log_every=10", "train.checkpoint_every=25",
          "train.sample_every=100"]


def gankit(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gankit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_until_training(run_dir: Path, proc: subprocess.Popen, after: int) -> bool:
    """True once stats.jsonl grew past `after` bytes (the loop runs); False if the process ended first."""
    path = run_dir / "stats.jsonl"
    while proc.poll() is None:
        if path.is_file() and path.stat().st_size > after:
            return True
        time.sleep(0.02)
    return False


def start(run_dir: Path, steps: int) -> subprocess.Popen:
    if (run_dir / "checkpoints" / "latest.pt").is_file():
        return gankit("train", "--resume", str(run_dir), f"train.steps={steps}")
    if run_dir.exists():  # stopped before its first checkpoint: nothing to resume, start again
        import shutil

        shutil.rmtree(run_dir)
    return gankit("train", *COMMON, f"train.steps={steps}", "--out", str(run_dir.parent), "--name", run_dir.name)


def interrupt(run_dir: Path, steps: int, times: int, signum: int, rng: random.Random) -> list[dict]:
    events = []
    while len(events) < times:
        size = (run_dir / "stats.jsonl").stat().st_size if (run_dir / "stats.jsonl").is_file() else 0
        proc = start(run_dir, steps)
        if not wait_until_training(run_dir, proc, size):
            break  # the run finished before this interruption
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is not None:
            break
        proc.send_signal(signum)
        _, err = proc.communicate()
        event = {"code": proc.returncode}
        if signum == signal.SIGTERM:
            line = [ln for ln in err.splitlines() if ln.startswith("stopped at step")]
            announced = int(line[-1].split()[3].rstrip(";")) if line else None
            saved = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["step"]
            event.update(announced=announced, saved=saved)
        events.append(event)
    proc = start(run_dir, steps)  # and on to the end
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    return events


def checkpoint_health(run_dir: Path) -> tuple[int, int, int]:
    loadable = total = 0
    for path in (run_dir / "checkpoints").iterdir():
        if path.name.endswith(".tmp"):
            continue
        total += 1
        try:
            torch.load(path, weights_only=True)
            loadable += 1
        except Exception:
            pass
    temps = sum(1 for p in run_dir.rglob("*.tmp"))
    return loadable, total, temps


def stats_health(run_dir: Path) -> tuple[int, int, int]:
    steps = [json.loads(line)["step"] for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    duplicates = len(steps) - len(set(steps))
    backward = sum(1 for a, b in zip(steps, steps[1:], strict=False) if b <= a)
    return len(steps), duplicates, backward


def identical(a: Path, b: Path) -> bool:
    x, y = (torch.load(p / "checkpoints" / "latest.pt", weights_only=True) for p in (a, b))
    for key in ("G", "D", "G_ema"):
        if any(not torch.equal(x[key][k], y[key][k]) for k in x[key]):
            return False
    for key in ("opt_G", "opt_D"):
        for pid, state in x[key]["state"].items():
            if any(not torch.equal(torch.as_tensor(v), torch.as_tensor(y[key]["state"][pid][k]))
                   for k, v in state.items()):
                return False
    return x["step"] == y["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--terms", type=int, default=10)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        ref = gankit("train", *COMMON, f"train.steps={args.steps}", "--out", str(root), "--name", "straight")
        assert ref.wait() == 0, ref.stderr.read()
        print(f"uninterrupted run: {args.steps} steps in {time.perf_counter() - started:.0f}s")
        for label, signum, times in (("kill -9", signal.SIGKILL, args.kills), ("SIGTERM", signal.SIGTERM, args.terms)):
            run_dir = root / label.replace(" ", "").replace("-", "")
            started = time.perf_counter()
            events = interrupt(run_dir, args.steps, times, signum, rng)
            loadable, total, temps = checkpoint_health(run_dir)
            lines, duplicates, backward = stats_health(run_dir)
            print(f"\n{label}: {len(events)} signals, exit codes {sorted({e['code'] for e in events})}, "
                  f"{time.perf_counter() - started:.0f}s")
            print(f"  checkpoints loadable: {loadable}/{total}; temp files left: {temps}")
            print(f"  stats.jsonl: {lines} lines, {duplicates} steps logged twice, {backward} backward jumps")
            print(f"  final weights and optimizer states bit-identical to the uninterrupted run: "
                  f"{identical(root / 'straight', run_dir)}")
            if signum == signal.SIGTERM:
                lost = [e["announced"] - e["saved"] for e in events if e["announced"] is not None]
                print(f"  steps lost per SIGTERM (announced stop step - saved step): {lost}; "
                      f"stopped at steps {[e['saved'] for e in events]}")


if __name__ == "__main__":
    main()
