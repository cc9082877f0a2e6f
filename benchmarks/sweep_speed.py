"""Sweep costs, as ratios measured in one run with alternating blocks (the cores are shared).

overhead: the same trials run by hand, one `gankit train` after another, against
          `gankit sweep --jobs 1` (goal: the sweep adds under 2% of wall time).
jobs:     `gankit sweep --jobs 2` against `--jobs 1` on trials of a spec (default: the first
          --trials of studies/ablation-mnist.yaml), each in a fresh output folder.

    OMP_NUM_THREADS=1 python benchmarks/sweep_speed.py overhead --trials 3 --steps 150 6000 --repeats 2
    python benchmarks/sweep_speed.py jobs --spec studies/ablation-mnist.yaml --trials 4 --repeats 1

With OMP_NUM_THREADS set, `gankit sweep` gives no trial more threads than that, and a
hand-run `gankit train` gets the same; on a busy machine this keeps both sides equal.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GANKIT = [sys.executable, "-m", "gankit"]
# `gankit sweep` that also writes its own CPU seconds (without its trials') to $SWEEP_PARENT_CPU at
# exit: the sweep's cost exactly, free of the trials' run-to-run noise.
SELF_TIMED = [sys.executable, "-c", "import atexit, os, resource, sys; from gankit.cli import main; "
              "atexit.register(lambda: open(os.environ['SWEEP_PARENT_CPU'], 'w').write(str(sum("
              "resource.getrusage(resource.RUSAGE_SELF)[:2])))); main(sys.argv[1:])"]


def children_cpu() -> float:
    """CPU seconds of every finished descendant (the sweep and the trials it waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def overhead(args: argparse.Namespace, work: Path) -> None:
    for steps in args.steps:
        overhead_at(args, work / f"steps{steps}", steps)


def overhead_at(args: argparse.Namespace, work: Path, steps: int) -> None:
    work.mkdir(parents=True)
    every = max(100, steps // 4)  # samples and checkpoints as a real run makes them
    overrides = [f"train.steps={steps}", "train.log_every=50", f"train.sample_every={every}",
                 f"train.checkpoint_every={every}"]
    spec = {"name": "overhead", "preset": "gan-ring8", "seeds": list(range(args.trials)), "overrides": overrides,
            "grid": {"loss.name": ["nonsaturating"]}}
    spec_path = work / "overhead.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    by_hand, swept, cpu_hand, cpu_swept, cpu_parent = [], [], [], [], []

    def hand(repeat: int) -> None:
        out = work / f"hand-{repeat}"
        started, cpu = time.perf_counter(), children_cpu()
        for seed in range(args.trials):  # what a user types without gankit sweep
            subprocess.run([*GANKIT, "train", "gan-ring8", *overrides, "loss.name=nonsaturating",
                            f"train.seed={seed}", "--out", str(out), "--name", f"seed{seed}"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        by_hand.append(time.perf_counter() - started)
        cpu_hand.append(children_cpu() - cpu)

    def sweep(repeat: int) -> None:
        cpu, parent_file = children_cpu(), work / f"parent-cpu-{repeat}"
        command = [*SELF_TIMED, "sweep", str(spec_path), "--jobs", "1", "--out", str(work / f"sweep-{repeat}")]
        swept.append(timed(command, env={**os.environ, "SWEEP_PARENT_CPU": str(parent_file)}))
        cpu_swept.append(children_cpu() - cpu)
        cpu_parent.append(float(parent_file.read_text()))

    for repeat in range(args.repeats):
        for side in (hand, sweep) if repeat % 2 == 0 else (sweep, hand):  # ABBA: a load trend favours neither
            side(repeat)
        print(f"block {repeat}: by hand {by_hand[-1]:.1f}s wall {cpu_hand[-1]:.1f}s CPU;  sweep --jobs 1 "
              f"{swept[-1]:.1f}s wall {cpu_swept[-1]:.1f}s CPU;  overhead {100 * (swept[-1] / by_hand[-1] - 1):+.2f}% "
              f"wall, {100 * (cpu_swept[-1] / cpu_hand[-1] - 1):+.2f}% CPU; the sweep process itself "
              f"{cpu_parent[-1]:.2f}s CPU ({load()})", flush=True)
    ratio, cpu_ratio = sum(swept) / sum(by_hand), sum(cpu_swept) / sum(cpu_hand)
    # CPU seconds hardly depend on how many other jobs share the cores; wall seconds do.
    print(f"{args.trials} trials x {steps} steps of gan-ring8, {args.repeats} alternating blocks: "
          f"by hand {statistics.fmean(by_hand):.1f}s wall {statistics.fmean(cpu_hand):.1f}s CPU, sweep "
          f"{statistics.fmean(swept):.1f}s wall {statistics.fmean(cpu_swept):.1f}s CPU per block; sweep overhead "
          f"{100 * (ratio - 1):+.2f}% of wall time, {100 * (cpu_ratio - 1):+.2f}% of CPU time "
          f"({(sum(cpu_swept) - sum(cpu_hand)) / args.repeats:+.2f} CPU-s per sweep); the sweep process itself used "
          f"{statistics.fmean(cpu_parent):.2f} CPU-s per sweep = {100 * sum(cpu_parent) / sum(cpu_hand):.2f}% of the "
          "trials' CPU by hand", flush=True)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def jobs(args: argparse.Namespace, work: Path) -> None:
    spec = yaml.safe_load(Path(args.spec).read_text())
    # A subset: the spec's first --trials trials, by narrowing its seeds and first grid block.
    from gankit.study.spec import load_spec

    loaded = load_spec(Path(args.spec))
    trials = [t for t in loaded.trials if t.seed == loaded.seeds[0]][: args.trials]  # distinct settings
    subset = {"name": spec["name"] + "-subset", "preset": spec.get("preset"), "seeds": [loaded.seeds[0]],
              "overrides": spec.get("overrides", []),
              "grid": {"trial": {t.setting_name: {"preset": t.preset,
                                                  "overrides": t.overrides[len(loaded.overrides):-1]}
                                 for t in trials}}}
    spec_path = work / "subset.yaml"
    spec_path.write_text(yaml.safe_dump(subset, sort_keys=False))
    one, two = [], []
    for repeat in range(args.repeats):
        order = [(1, one), (2, two)] if repeat % 2 == 0 else [(2, two), (1, one)]
        for n, bucket in order:
            bucket.append(timed([*GANKIT, "sweep", str(spec_path), "--jobs", str(n),
                                 "--out", str(work / f"jobs{n}-{repeat}")]))
        print(f"block {repeat}: --jobs 1 {one[-1]:.1f}s  --jobs 2 {two[-1]:.1f}s  ratio {two[-1] / one[-1]:.3f}",
              flush=True)
    print(f"{len(trials)} trials of {args.spec}: --jobs 1 {statistics.fmean(one):.1f}s, --jobs 2 "
          f"{statistics.fmean(two):.1f}s; wall ratio jobs2/jobs1 = {sum(two) / sum(one):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["overhead", "jobs"])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--steps", type=int, nargs="+", default=[400],
                        help="overhead: steps per gan-ring8 trial; several lengths are measured one after another")
    parser.add_argument("--repeats", type=int, default=2, help="alternating blocks of each kind")
    parser.add_argument("--spec", default=str(ROOT / "studies" / "ablation-mnist.yaml"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gankit-sweep-bench-"))
    try:
        (overhead if args.what == "overhead" else jobs)(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
