"""Small helpers with no torch dependency: atomic writes, JSONL, run directories."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gankit.errors import GankitError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


# A full disk, a quota, or a file-size limit: the same to a user, who must free space.
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def disk_full_error(path: Path, exc: OSError) -> GankitError:
    return GankitError(f"cannot write {path}: {exc.strerror or 'disk full'}; free some space there (or move the "
                       "run to a larger disk) and continue with `gankit train --resume RUN`, since every earlier "
                       "file is intact.")


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable: without it a power cut can forget the new name."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems (and Windows) cannot open a directory; nothing more to do there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temp file beside `path`, fsync it, then rename it over `path`.

    A crash mid-write leaves the old file intact: os.replace is atomic on POSIX and Windows, and
    the fsync before it means the new name never points at data still in the page cache.
    A full disk becomes one GankitError sentence, with the temp file removed and the old file kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        cause = disk_full_cause(exc)
        if cause is not None:
            raise disk_full_error(path, cause) from None
        raise


def disk_full_cause(exc: BaseException | None) -> OSError | None:
    """The ENOSPC/EDQUOT/EFBIG OSError behind `exc`, also when a library wrapped it: torch.save
    writing to a Python file raises a RuntimeError whose context is the OSError."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def remove_temp_files(folder: Path) -> int:
    """Delete the temp files that atomic_write leaves when its process is killed mid-write (kill -9
    can run no cleanup). Call only while holding the folder's run lock: then no writer is live."""
    stale = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


@contextlib.contextmanager
def exclusive_lock(path: Path, held_by_another: Callable[[], Exception]) -> Iterator[None]:
    """Hold an exclusive `fcntl.flock` on `path` (created if absent) for the `with` block.

    The kernel drops the lock when the process dies, even by kill -9, so it never outlives its
    holder. When another process holds it, `held_by_another()` is raised. File systems without
    flock (some network mounts) go unlocked rather than failing."""
    import fcntl

    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise held_by_another() from None
        except OSError:
            pass
        yield
    finally:
        handle.close()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            raise disk_full_error(Path(path), exc) from None
        raise


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSONL log. A line that is not JSON (the tail of an append cut short by a
    kill or a full disk) is skipped with one warning rather than failing every reader after it."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            warnings.warn(f"{path} line {number} is not complete JSON (a write cut short?); skipped it.",
                          stacklevel=2)
    return records


def truncate_jsonl(path: Path, last_step: int, key: str = "step") -> int:
    """Keep only the records of `path` with `key` <= last_step (and no broken line); return how many went.

    A resumed run calls this with its checkpoint's step, so the steps it logged after that
    checkpoint and is about to log again appear once, in order."""
    path = Path(path)
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record.get(key), int) or record[key] <= last_step:
            kept.append(line)
    dropped = len([ln for ln in lines if ln.strip()]) - len(kept)
    if dropped:
        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return dropped
