"""Time `gankit report` over a sweep or runs (goal: under 10 s for 50 runs).

    python benchmarks/report_speed.py sweeps/ablation-mnist --repeats 3

Each repeat builds the whole page (table, curves, sample panel, every run's section) in this
process, as `gankit report` does after its imports; the import time is printed apart.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    from gankit.study.collect import collect_runs
    from gankit.study.report import build_report

    imports = time.perf_counter() - started
    runs = collect_runs(args.dirs)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            started = time.perf_counter()
            out, _ = build_report(args.dirs, Path(tmp) / "report.html", echo=lambda _: None, show=False)
            times.append(time.perf_counter() - started)
        size = out.stat().st_size / 2**20
    print(f"{len(runs)} runs: report built in {statistics.fmean(times):.2f}s (min {min(times):.2f}s over "
          f"{len(times)} repeats), {size:.1f} MB; imports {imports:.2f}s")


if __name__ == "__main__":
    main()
