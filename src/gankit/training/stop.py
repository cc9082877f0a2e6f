"""Graceful stop: a signal ends the run after the current step, with latest.pt saved.

Cluster schedulers send SIGTERM (or, with SLURM's `--signal`, SIGUSR1) some time before they
kill a job; a closed terminal sends SIGHUP; Ctrl-C sends SIGINT. Each only sets a flag that the
training loop reads between steps, so nothing is cut mid-update; a second Ctrl-C is the way
out when even one step is too long to wait for.

Under DDP every rank must leave the loop after the same step: a rank that left alone would
leave the others waiting for it in the next step's all-reduce, and the job would hang without
saving. A signal reaches each rank at its own moment (`kill` of one process, SLURM signalling one
node's tasks), so there the handler only records it (`received`), and the AgreeOnStop hook sets
`signum` on every rank at the same step.
"""

from __future__ import annotations

import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP)


class StopFlag:
    """Never requested: what a run has when no signal handler is installed (tests, notebooks)."""

    signum: int | None = None  # the signal the run stops for; the loop ends once it is set
    received: int | None = None  # the signal this process received (under DDP, not yet agreed on)

    @property
    def requested(self) -> bool:
        return self.signum is not None


class GracefulStop(StopFlag):
    """Context manager: while inside, the signals above request a stop instead of killing the process."""

    def __init__(self, shared: bool = False, speaks: bool = True) -> None:
        self.signum = self.received = None
        self.shared = shared  # under DDP: `signum` is set by AgreeOnStop, on every rank at once
        self.speaks = speaks  # under DDP rank 0 alone, or each rank would print the same line
        self.previous: dict[int, object] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
            for signum in SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt  # the second Ctrl-C: stop now, latest.pt stays as it was
            return
        self.received = signum
        if not self.shared:
            self.signum = signum
        if self.speaks:
            print(f"{signal.Signals(signum).name}: finishing this step and saving checkpoints/latest.pt "
                  "(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
