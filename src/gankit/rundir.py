"""Run directories: created fresh, never overwritten, and written by one process at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gankit.errors import GankitError


def create_run_dir(out: Path, name: str | None, preset: str) -> Path:
    """`out/name`, or `out/preset-NNN` with the first free number; created atomically."""
    out = Path(out)
    check_run_name(name)
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


def check_run_name(name: str | None) -> None:
    """`--name` is one path component: `a/b` or `../x` would put the run somewhere --out does not say."""
    if name is None:
        return
    separators = [sep for sep in (os.sep, os.altsep, "/") if sep]
    if not name.strip() or name in (".", "..") or any(sep in name for sep in separators) or "\0" in name:
        raise GankitError(f"--name must be a single folder name such as 'ttur-1', not '{name}'; "
                          "use --out for the parent directory.")


LOCK_NAME = ".lock"
_held: dict[Path, tuple[int, int]] = {}  # run dir -> (fd, depth): train() inside resume() holds it once


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive `fcntl.flock` on RUN_DIR/.lock while a process writes the run.

    The kernel drops a flock when its process dies, even by kill -9, so a stale lock never
    outlives its holder; the file holds the PID only to name it in the refusal."""
    import fcntl

    run_dir = Path(run_dir).resolve()
    if run_dir in _held:  # re-entered by the same process
        fd, depth = _held[run_dir]
        _held[run_dir] = (fd, depth + 1)
        try:
            yield
        finally:
            _held[run_dir] = (fd, _held[run_dir][1] - 1)
        return
    run_dir.mkdir(parents=True, exist_ok=True)  # train() from Python may name a new directory
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise GankitError(f"run directory {run_dir} is in use by process {holder}; wait for it to finish, "
                          f"or stop it (kill {holder}) and then resume.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[run_dir] = (fd, 1)
    try:
        yield
    finally:
        del _held[run_dir]
        os.close(fd)  # closing the descriptor releases the lock


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
