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
