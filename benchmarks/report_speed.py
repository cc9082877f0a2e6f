"""Time `gankit report` over a sweep or runs (goal: under 10 s for 50 runs).

    python benchmarks/report_speed.py sweeps/ablation-mnist --repeats 3
    python benchmarks/report_speed.py sweeps/ablation-mnist --replicate 2   # 25 trials -> 50 runs

--replicate N copies a sweep's trials N times (as extra seeds of the same settings) into a
temporary sweep, to time a report over more runs than were trained.

Each repeat builds the whole page (table, curves, sample panel, every run's section) in this
process, as `gankit report` does after its imports; the import time is printed apart.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replicate", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    from gankit.study.collect import collect_runs
    from gankit.study.report import build_report

    imports = time.perf_counter() - started
    times, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [replicate(args.dirs[0], Path(tmp) / "replicated", args.replicate)] if args.replicate > 1 else args.dirs
        runs = collect_runs(dirs)
        for _ in range(args.repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            out, _ = build_report(dirs, Path(tmp) / "report.html", echo=lambda _: None, show=False)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        size = out.stat().st_size / 2**20
    print(f"{len(runs)} runs: report built in {statistics.fmean(times):.2f}s wall (min {min(times):.2f}s), "
          f"{statistics.fmean(cpu):.2f}s CPU, over {len(times)} repeats; {size:.1f} MB; imports {imports:.2f}s")


def replicate(sweep: Path, out: Path, copies: int) -> Path:
    """A sweep folder holding each trial of `sweep` `copies` times, as seeds 1000*k + seed."""
    import yaml

    manifest = yaml.safe_load((sweep / "sweep.yaml").read_text())
    trials = []
    for k in range(copies):
        for trial in manifest["trials"]:
            name = f"{trial['name']},copy={k}"
            shutil.copytree(sweep / trial["name"], out / name, ignore=shutil.ignore_patterns("*.pt", "events.*"))
            trials.append({**trial, "name": name, "seed": 1000 * k + trial["seed"]})
    (out / "sweep.yaml").write_text(yaml.safe_dump({**manifest, "trials": trials}, sort_keys=False))
    return out


if __name__ == "__main__":
    main()
