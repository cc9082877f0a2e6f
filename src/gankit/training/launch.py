"""`gankit train ... --nproc N`: the launcher, in the process the user started.

It runs the same command in N processes through torchrun's own launcher and turns torchrun's
ways of ending (a failed worker, a signal to the launcher) into the exit code one process would
give. What happens inside each process is `gankit.training.distributed`.
"""

from __future__ import annotations

import os


def launch(nproc: int, argv: list[str]) -> int:
    """`gankit train ... --nproc N`: the same command in N processes on this node, through
    `torch.distributed.run` (torchrun's own launcher). Returns the job's exit code."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # Share the cores: torchrun would set 1 thread per process and say so in a banner.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # The workers speak for themselves (rank 0 prints any error); the agent's own logs are noise.
    # Each of its modules' loggers has its own level (elastic's get_logger), so each is quieted.
    for name in [*logging.root.manager.loggerDict, "torch.distributed.elastic"]:
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    # torchrun passes these signals on to the workers, which finish their step and save (SIGUSR1 is
    # SLURM's `--signal`; by default torchrun would die of it and leave them running), and gives
    # them this long to do so before it kills them (its default, 30 s, may not cover a checkpoint).
    args = parse_args(["--standalone", f"--nproc-per-node={nproc}", "--monitor-interval=0.1",
                       "--signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", "--shutdown-timeout=300",
                       "-m", "gankit", *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        _, failure = exc.get_first_failure()
        return failure.exitcode if failure.exitcode > 0 else 1
    except SignalException as exc:
        # The launcher was signalled (Ctrl-C, a scheduler's SIGTERM) and passed the signal on: the
        # workers finished their step, saved and said so; the job ends as one process would.
        return 128 + int(exc.sigval)
    return 0


def without_nproc(argv: list[str]) -> list[str]:
    """The command as typed, minus `--nproc N` / `--nproc=N`: what each launched process runs."""
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--nproc":
            skip = True
        elif not word.startswith("--nproc="):
            out.append(word)
    return out
