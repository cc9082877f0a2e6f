"""One sweep trial, run in its own process: `python -m gankit.study.trial RUN_DIR --threads N`.

The same `run_trial` runs under the local launcher (a subprocess per trial) and under submitit
(a SLURM job, or submitit's local executor in the tests). It trains the config.yaml that the
sweep wrote into RUN_DIR, or resumes it from checkpoints/latest.pt, and leaves its outcome in
RUN_DIR/sweep-status.json, which is what a restarted sweep trusts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gankit.utils import atomic_write_text, exclusive_lock, read_jsonl

STATUS_FILE = "sweep-status.json"
LOCK_FILE = ".trial.lock"


def read_status(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_status(run_dir: Path, **status: Any) -> dict[str, Any]:
    atomic_write_text(run_dir / STATUS_FILE, json.dumps(status) + "\n")
    return status


def one_line(exc: BaseException) -> str:
    """The first line of an error, with its type when it is not the user's own mistake."""
    from gankit.errors import GankitError

    text = (str(exc).strip().splitlines() or [""])[0]
    return text if isinstance(exc, GankitError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def trial_lock(run_dir: Path):
    """Held while the trial trains, so a second sweep process cannot train the same run at once
    (where the file system has no flock, the sweep's own lock still guards)."""
    return exclusive_lock(run_dir / LOCK_FILE,
                          lambda: RuntimeError(f"{run_dir} is being trained by another process"))


def _keep_until(path: Path, step: int, step_of) -> None:
    """Drop log lines written after the checkpoint a resumed run restarts from.

    A killed trial logged steps past its last checkpoint; they will be trained and logged again,
    so keeping both would show every such step twice."""
    records = read_jsonl(path)
    kept = [r for r in records if step_of(r) <= step]
    if len(kept) != len(records):
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def _metric_step(record: dict[str, Any]) -> int:
    if record.get("event") == "collapse":
        return int(record["detected_step"])
    return int(record.get("checkpoint_step", 0)) if record.get("source") == "training" else -1


def run_trial(run_dir: str | os.PathLike, threads: int = 1) -> dict[str, Any]:
    """Train RUN_DIR/config.yaml to its last step, resuming from latest.pt when there is one."""
    import torch

    from gankit import config as config_lib
    from gankit.checkpoint import load_checkpoint
    from gankit.training.loop import train

    run_dir = Path(run_dir)
    torch.set_num_threads(max(1, int(threads)))  # trials share the cores: no trial may take them all
    started = time.perf_counter()
    try:
        with trial_lock(run_dir):
            cfg = config_lib.load(run_dir / "config.yaml")
            latest = run_dir / "checkpoints" / "latest.pt"
            resume_from, step = None, 0
            if latest.is_file():
                step = int(load_checkpoint(latest)["step"])
                resume_from = latest
            if step >= cfg.train.steps:
                # Killed after its final checkpoint but before saying so: nothing left to train.
                return _write_status(run_dir, status="done", seconds=read_status(run_dir).get("seconds", 0.0),
                                     resumed_from=step)
            _write_status(run_dir, status="running", pid=os.getpid(), resumed_from=step, threads=threads)
            if resume_from is None:
                for leftover in ("stats.jsonl", "metrics.jsonl"):  # from an attempt killed before any checkpoint
                    (run_dir / leftover).unlink(missing_ok=True)
            else:
                _keep_until(run_dir / "stats.jsonl", step, lambda r: int(r["step"]))
                _keep_until(run_dir / "metrics.jsonl", step, _metric_step)
            train(cfg, run_dir, resume_from=resume_from)
    except BaseException as exc:  # noqa: B036 - any crash, even SystemExit from deep inside, is this trial's alone
        interrupted = isinstance(exc, KeyboardInterrupt)
        _write_status(run_dir, status="interrupted" if interrupted else "failed", error=one_line(exc),
                      seconds=time.perf_counter() - started)
        if interrupted:
            raise
        return read_status(run_dir)
    return _write_status(run_dir, status="done", seconds=time.perf_counter() - started, resumed_from=step,
                         threads=threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gankit.study.trial")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    status = run_trial(args.run_dir, args.threads)
    if status.get("status") == "failed":
        print(f"error: {status.get('error')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
