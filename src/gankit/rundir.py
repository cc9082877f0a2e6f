"""Run directories: created fresh, never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

from gankit.errors import GankitError


def create_run_dir(out: Path, name: str | None, preset: str) -> Path:
    """`out/name`, or `out/preset-NNN` with the first free number; created atomically."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(f"cannot create output directory {out} ({exc.strerror}); choose a writable --out.") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise GankitError(f"output directory {out} is not writable; choose another --out.")
    if name is not None:
        path = out / name
        try:
            path.mkdir()
        except FileExistsError:
            raise GankitError(f"run directory {path} already exists; pick another --name, or continue it "
                              f"with `gankit train --resume {path}`.") from None
        return path
    for number in range(100000):
        path = out / f"{preset}-{number:03d}"
        try:
            path.mkdir()  # mkdir, not exists(): two runs started at once cannot take the same name
            return path
        except FileExistsError:
            continue
    raise GankitError(f"{out} holds 100000 runs of {preset}; choose another --out.")


def write_command(run_dir: Path, argv: list[str]) -> Path:
    """Append the exact command line and the versions it ran with to RUN_DIR/command.txt.

    config.yaml says what was trained; this says how it was asked for (seed flags and all)
    and on what software, so a number in a table can be traced back to its run. A resumed run
    appends another block, so the file lists every process that wrote into the directory.
    """
    import platform
    import shlex
    import sys
    import time
    from importlib.metadata import version

    import torch

    cuda = torch.version.cuda if torch.cuda.is_available() else "not available"
    lines = [
        f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
        f"gankit {shlex.join(argv)}",
        f"cwd: {os.getcwd()}",
        f"gankit {version('gankit')}, torch {torch.__version__} (CUDA {cuda}), "
        f"torchvision {version('torchvision')}, Python {platform.python_version()} on {platform.platform()}",
        f"python: {sys.executable}",
    ]
    path = Path(run_dir) / "command.txt"
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n\n")
    return path
