"""Runs that survive: divergence, resume overrides, signals, locks, logs, retention and full disks.

Training here is in-process on ring8 with tiny batches, so each run costs well under a second;
signals and locks need real processes and use the CLI.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.errors import Diverged, GankitError
from gankit.training.loop import resume, train
from gankit.utils import read_jsonl

from conftest import assert_user_error, run_cli

FAST = ["train.batch_size=16", "model.width=16", "train.sample_every=1000"]


def _cfg(*overrides):
    return config_lib.resolve("gan-ring8", FAST + list(overrides))


def _finite(payload) -> bool:
    return all(t.isfinite().all() for key in ("G", "D", "G_ema") for t in payload[key].values()
               if t.is_floating_point())


def _steps(run_dir):
    return [r["step"] for r in read_jsonl(run_dir / "stats.jsonl") if "event" not in r]


# ---------------------------------------------------------------------------------------------
# Divergence


def test_divergence_stops_with_the_step_and_writes_no_nonfinite_checkpoint(tmp_path):
    train(_cfg("train.steps=10", "train.log_every=5", "train.checkpoint_every=10"), tmp_path / "r")
    good = load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")
    # A checkpoint step (12) that is not a logging step (14): the checkpoint's own check catches it.
    with pytest.raises(Diverged, match=r"diverged at step 12: .* not finite; the last good checkpoint is "
                                       r"checkpoints/latest.pt \(step 10\)") as info:
        resume(tmp_path / "r", ["train.steps=40", "train.lr_G=1e20", "train.lr_D=1e20", "train.log_every=7",
                                "train.checkpoint_every=6"])
    assert info.value.exit_code == 3
    latest = load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")
    assert latest["step"] == 10 and _finite(latest)
    assert torch.equal(latest["G"]["net.0.weight"], good["G"]["net.0.weight"])
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["latest.pt", "step-000010.pt"]


def test_divergence_is_caught_at_the_first_logging_step(tmp_path):
    with pytest.raises(Diverged, match="at step 3: .*none yet"):
        train(_cfg("train.steps=300", "train.lr_G=1e20", "train.lr_D=1e20", "train.log_every=3"), tmp_path / "r")
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_rollback_halves_the_rates_and_logs_each_rollback(tmp_path):
    run_dir = tmp_path / "r"
    train(_cfg("train.steps=6", "train.log_every=3", "train.checkpoint_every=6"), run_dir)
    with pytest.raises(Diverged, match="after 2 rollbacks"):
        resume(run_dir, ["train.steps=30", "train.lr_G=1e20", "train.lr_D=1e20", "train.on_divergence=rollback",
                         "train.max_rollbacks=2"])
    events = [r for r in read_jsonl(run_dir / "stats.jsonl") if r.get("event") == "rollback"]
    assert [(e["step"], e["diverged_step"], e["rollback"]) for e in events] == [(6, 9, 1), (6, 9, 2)]
    assert [e["lr_G"] for e in events] == [5e19, 2.5e19]
    assert _steps(run_dir) == [3, 6]  # what the diverged attempts logged was cut back to step 6
    assert config_lib.load(run_dir / "config.yaml").train.lr_G == 2.5e19


def test_rollback_recovers_and_keeps_the_halved_rate(tmp_path, monkeypatch):
    """A one-off blow-up at step 5 (a NaN written into D, as a bad batch would): the guard sees it
    at the step-6 log, the run goes back to step 4 at half the rates and trains to the end."""
    from gankit.training import loop
    from gankit.training.hooks import Hook

    poisoned = []

    class Poison(Hook):
        def on_step(self, run):
            if run.step == 5 and not poisoned:
                poisoned.append(run.step)
                with torch.no_grad():
                    next(run.D.parameters()).fill_(float("nan"))

    default_hooks = loop.default_hooks
    monkeypatch.setattr(loop, "default_hooks", lambda run: [Poison(), *default_hooks(run)])
    run_dir = tmp_path / "r"
    train(_cfg("train.steps=10", "train.log_every=2", "train.checkpoint_every=4", "train.on_divergence=rollback"),
          run_dir)
    latest = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert latest["step"] == 10 and _finite(latest) and latest["rollbacks"] == 1
    assert latest["opt_G"]["param_groups"][0]["lr"] == 5e-4 == latest["config"]["train"]["lr_G"]
    records = read_jsonl(run_dir / "stats.jsonl")
    assert [r["step"] for r in records] == [2, 4, 4, 6, 8, 10] and records[2]["event"] == "rollback"
    assert [r["lr_D"] for r in records if "event" not in r] == [1e-3, 1e-3, 5e-4, 5e-4, 5e-4]
    assert config_lib.load(run_dir / "config.yaml").train.lr_D == 5e-4


def test_nonfinite_learning_rates_are_refused_at_parse_time():
    for value in (".inf", "inf", "nan", "-.inf", "1e999"):
        with pytest.raises(GankitError, match="finite"):
            _cfg(f"train.lr_G={value}")


# ---------------------------------------------------------------------------------------------
# Resume: overrides take effect, refused ones say so, config.yaml.N keeps the history


def test_resume_overrides_take_effect_and_are_recorded(tmp_path):
    run_dir = tmp_path / "r"
    train(_cfg("train.steps=4", "train.log_every=2", "train.checkpoint_every=4"), run_dir)
    resume(run_dir, ["train.steps=8", "train.lr_G=0.01", "train.lr_D=0.002", "train.betas=[0.0,0.9]",
                     "train.log_every=1", "train.batch_size=8", "train.keep_checkpoints=1", "eval.seed=7"])
    latest = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert latest["step"] == 8 and latest["images_seen"] == 4 * 16 + 4 * 8  # batch_size took effect
    for opt, lr in (("opt_G", 0.01), ("opt_D", 0.002)):
        assert latest[opt]["param_groups"][0]["lr"] == lr
        assert tuple(latest[opt]["param_groups"][0]["betas"]) == (0.0, 0.9)
    records = read_jsonl(run_dir / "stats.jsonl")
    assert [r["step"] for r in records] == [2, 4, 5, 6, 7, 8]  # log_every=1 after the resume
    assert [r["lr_G"] for r in records] == [1e-3, 1e-3, 0.01, 0.01, 0.01, 0.01]
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step-*.pt")) == ["step-000008.pt"]
    new = config_lib.load(run_dir / "config.yaml")
    assert (new.train.lr_G, new.train.steps, new.eval.seed) == (0.01, 8, 7)
    assert config_lib.load(run_dir / "config.yaml.1").train.lr_G == 1e-3
    header = (run_dir / "config.yaml").read_text().splitlines()[:2]
    assert header[0] == "# resumed at step 4 from checkpoints/latest.pt"
    assert "config.yaml.1" in header[1] and "train.lr_G: 0.001 -> 0.01" in header[1]
    resume(run_dir, ["train.steps=9"])
    assert (run_dir / "config.yaml.2").is_file() and "train.steps: 8 -> 9" in (run_dir / "config.yaml").read_text()


@pytest.mark.parametrize("key", sorted(f"{s}.{k}" for s in ("train", "eval")
                                       for k in config_lib.to_dict(config_lib.Config())[s]))
def test_every_resume_override_is_honoured_or_refused(key):
    """Each train.*/eval.* key is either read from the config by the resumed run (so recorded and
    effective) or on the refused list; a new key must be placed in one of the two."""
    from gankit.training.loop import NOT_RESUMABLE

    honoured = {  # key -> where the resumed run reads it
        "train.steps": "loop", "train.batch_size": "loader", "train.gradient_accumulation": "loop",
        "train.discriminator_steps": "loop", "train.generator_steps": "loop",
        "train.lr_G": "Run.restore", "train.lr_D": "Run.restore",
        "train.betas": "Run.restore", "train.ema_halflife_kimg": "loop EMA", "train.device": "pick_device",
        "train.channels_last": "build_run", "train.log_every": "hooks", "train.sample_every": "hooks",
        "train.checkpoint_every": "hooks", "train.grid_samples": "build_run", "train.augment": "loop",
        "train.augment_policy": "loop", "train.on_divergence": "policy", "train.max_rollbacks": "policy",
        "train.keep_checkpoints": "Checkpointer", "train.epochs": "build_run (steps_from_epochs)",
        "train.precision": "Engine.start", "train.sync_batchnorm": "Engine.prepare (build_run)",
        # The schedule is rebuilt from the config: a resumed run takes the phase it names for images_seen.
        "train.lr_schedule": "build_schedule", "train.lr_decay_fraction": "build_schedule",
        "train.schedule": "build_schedule", "train.fade_kimg": "build_schedule",
        "train.stable_kimg": "build_schedule", "train.batch_per_resolution": "build_schedule",
    }
    assert (key in honoured) != (key in NOT_RESUMABLE) or key.startswith("eval."), key


def test_resume_refuses_what_it_cannot_honour(tmp_path):
    train(_cfg("train.steps=2", "train.checkpoint_every=2"), tmp_path / "r")
    before = (tmp_path / "r" / "config.yaml").read_text()
    for override, fragment in (("train.seed=5", "train.seed"), ("train.optimizer=rmsprop", "train.optimizer")):
        with pytest.raises(GankitError, match=f"cannot change {fragment}"):
            resume(tmp_path / "r", [override])
    assert (tmp_path / "r" / "config.yaml").read_text() == before and not (tmp_path / "r" / "config.yaml.1").exists()


def test_a_checkpoint_from_another_run_is_refused(tmp_path):
    train(_cfg("train.steps=2", "train.checkpoint_every=2"), tmp_path / "a")
    train(_cfg("train.steps=2", "train.checkpoint_every=2", "model.depth=2"), tmp_path / "b")
    theirs = (tmp_path / "b" / "checkpoints" / "latest.pt").read_bytes()
    (tmp_path / "a" / "checkpoints" / "latest.pt").write_bytes(theirs)
    before = (tmp_path / "a" / "config.yaml").read_text()
    with pytest.raises(GankitError, match=r"belongs to another run \(model.depth is 2 there, 3 in config.yaml\)"):
        resume(tmp_path / "a")
    assert (tmp_path / "a" / "config.yaml").read_text() == before


def test_a_state_dict_that_does_not_fit_is_one_sentence(tmp_path):
    train(_cfg("train.steps=2", "train.checkpoint_every=2"), tmp_path / "r")
    path = tmp_path / "r" / "checkpoints" / "latest.pt"
    payload = load_checkpoint(path)
    payload["G_ema"]["net.0.weight"] = torch.zeros(3, 3)
    torch.save(payload, path)
    proc = run_cli("sample", str(tmp_path / "r"), "--out", str(tmp_path / "s.png"))
    assert_user_error(proc, "G_ema", "does not fit", "size mismatch")
    with pytest.raises(GankitError, match="does not fit"):
        resume(tmp_path / "r", ["train.steps=3"])


# ---------------------------------------------------------------------------------------------
# Logs that stay true


def test_resume_cuts_stats_back_to_the_checkpoint(tmp_path):
    run_dir = tmp_path / "r"
    train(_cfg("train.steps=9", "train.log_every=3", "train.checkpoint_every=4"), run_dir)
    # As a kill after step 9 leaves it: latest.pt at step 8, stats up to 9, and half a line.
    (run_dir / "checkpoints" / "latest.pt").write_bytes((run_dir / "checkpoints" / "step-000008.pt").read_bytes())
    with open(run_dir / "stats.jsonl", "a") as f:
        f.write('{"step": 12, "images_se')
    (run_dir / "plots" / ".losses.png.x1y2z3.tmp").write_bytes(b"half a png")  # a kill mid-write leaves these
    resume(run_dir, ["train.steps=12"])
    assert _steps(run_dir) == [3, 6, 9, 12]
    assert not list(run_dir.rglob("*.tmp"))
    lines = (run_dir / "stats.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir)).Reload()  # reads every event file, in order; purge_step applied
    assert [e.step for e in events.Scalars("lr_G")] == [3, 6, 9, 12]


def test_readers_skip_a_truncated_last_line_with_a_warning(tmp_path):
    from gankit.training.plots import plot_losses

    path = tmp_path / "stats.jsonl"
    path.write_text('{"step": 1, "kimg": 0.1, "D/adv": 1.0}\n{"step": 2, "kimg": 0.2, "D/a')
    with pytest.warns(UserWarning, match="line 2 is not complete JSON"):
        assert read_jsonl(path) == [{"step": 1, "kimg": 0.1, "D/adv": 1.0}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plot_losses(path, tmp_path / "losses.png")
    assert (tmp_path / "losses.png").stat().st_size > 0


def test_atomic_write_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    from gankit import utils

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(utils.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}"))
                        or real_fsync(fd))
    utils.atomic_write_text(tmp_path / "a.txt", "x")
    assert len(synced) == 2 and synced[0].startswith(str(tmp_path / ".a.txt.")) and synced[1] == str(tmp_path)


# ---------------------------------------------------------------------------------------------
# Retention


def test_keep_checkpoints_deletes_the_oldest_step_files_only(tmp_path):
    run_dir = tmp_path / "r"
    train(_cfg("train.steps=10", "train.checkpoint_every=2", "train.keep_checkpoints=2"), run_dir)
    (run_dir / "checkpoints" / "best.pt").write_bytes(b"kept")
    (run_dir / "checkpoints" / "best-before-collapse.pt").write_bytes(b"kept")
    resume(run_dir, ["train.steps=14"])
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["best-before-collapse.pt", "best.pt", "latest.pt", "step-000012.pt", "step-000014.pt"]


# ---------------------------------------------------------------------------------------------
# Signals and locks: real processes


def _start(*args, cwd):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gankit", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_step(run_dir, proc, timeout=120, after=0):
    """Block until the run has logged a stats record (so its loop is running) past byte `after`."""
    deadline = time.time() + timeout
    path = run_dir / "stats.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if path.is_file() and path.stat().st_size > after:
            return
        time.sleep(0.05)
    raise AssertionError(f"the run never logged: {proc.poll()} {proc.stderr.read() if proc.poll() is not None else ''}")


LONG = ["gan-ring8", "train.steps=1000000", "train.batch_size=8", "model.width=8", "train.log_every=1",
        "train.sample_every=1000000", "train.checkpoint_every=1000000"]


@pytest.mark.parametrize("signum, code", [
    (signal.SIGTERM, 143),
    # The same handler for every signal; the others cost a process each, so they run with -m slow.
    pytest.param(signal.SIGUSR1, 138, marks=pytest.mark.slow),
    pytest.param(signal.SIGHUP, 129, marks=pytest.mark.slow),
])
def test_a_signal_finishes_the_step_saves_and_says_how_to_continue(tmp_path, signum, code):
    proc = _start("train", *LONG, "--out", str(tmp_path), "--name", "r", cwd=tmp_path)
    run_dir = tmp_path / "r"
    _wait_for_step(run_dir, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped at step ") and f"gankit train --resume {run_dir}" in last
    step = int(last.split()[3].rstrip(";"))
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["step"] == step
    assert max(_steps(run_dir)) >= step - 1  # logging every step: at most the step in flight is unlogged
    assert (run_dir / "plots" / "losses.png").is_file() and "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_once_saves_and_twice_stops_at_once(tmp_path):
    proc = _start("train", *LONG, "--out", str(tmp_path), "--name", "r", cwd=tmp_path)
    _wait_for_step(tmp_path / "r", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "stopped at step" in err
    # Twice: the second one arrives before the step can finish saving; no traceback either way.
    size = (tmp_path / "r" / "stats.jsonl").stat().st_size
    proc = _start("train", "--resume", str(tmp_path / "r"), "train.log_every=1", cwd=tmp_path)
    _wait_for_step(tmp_path / "r", proc, after=size)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")["step"] > 0


def test_one_writer_per_run_directory_and_kill_9_releases_the_lock(tmp_path):
    from gankit.rundir import run_lock

    train(_cfg("train.steps=2", "train.checkpoint_every=2"), tmp_path / "r")
    run_dir = tmp_path / "r"
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    # The holder takes the lock as train() does, without paying for torch.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from gankit.rundir import run_lock\n"
                               f"with run_lock({str(run_dir)!r}):\n    print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_user_error(run_cli("train", "--resume", str(run_dir), "train.steps=4"),
                          f"in use by process {holder.pid}", f"kill {holder.pid}")
        with pytest.raises(GankitError, match=f"in use by process {holder.pid}"):
            resume(run_dir, ["train.steps=4"])
        assert {p: p.read_bytes() for p in before} == before
    finally:
        holder.kill()  # SIGKILL: no handler runs; the kernel drops the flock with the process
        holder.wait()
    with run_lock(run_dir):
        assert (run_dir / ".lock").read_text().strip() == str(os.getpid())


# ---------------------------------------------------------------------------------------------
# A full disk: a real, small filesystem


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs when we may mount one (root); otherwise a 3 MB file-size limit (EFBIG) in the child."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                                            capture_output=True).returncode == 0:
        yield mount, None
        subprocess.run(["umount", str(mount)], check=True)
    else:
        yield mount, 3 * 2**20


def test_disk_full_is_one_sentence_and_the_previous_checkpoint_survives(small_disk):
    mount, fsize = small_disk
    prefix = []
    if fsize:  # no tmpfs: a file-size limit gives EFBIG on the first write past it
        prefix = [sys.executable, "-c", f"import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                  f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize})); "
                  "import sys; from gankit.cli import main; main(sys.argv[1:])"]
    else:
        prefix = [sys.executable, "-m", "gankit"]
    # Each checkpoint is ~1 MB (MLP 128 wide): step-2 and latest fit, step-4 does not.
    args = ["train", "gan-ring8", "train.steps=20", "train.checkpoint_every=2", "train.batch_size=8",
            "train.sample_every=1000", "--out", str(mount), "--name", "r"]
    proc = subprocess.run(prefix + args, capture_output=True, text=True, timeout=300)
    assert_user_error(proc, "cannot write", "free some space")
    latest = load_checkpoint(mount / "r" / "checkpoints" / "latest.pt")
    assert latest["step"] >= 2 and _finite(latest)
    assert not [p for p in (mount / "r" / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_sample_npy_streams_in_chunks_and_matches_the_in_memory_draw(tmp_path):
    import numpy as np

    from gankit.sampling import generate, load_sampler, write_npy

    train(_cfg("train.steps=2", "train.checkpoint_every=2"), tmp_path / "r")
    write_npy(tmp_path / "s.npy", load_sampler(tmp_path / "r"), 700, seed=3)
    expected, _ = generate(tmp_path / "r", 700, seed=3)
    assert np.array_equal(np.load(tmp_path / "s.npy"), expected.numpy())
    assert math.isfinite(float(np.load(tmp_path / "s.npy", mmap_mode="r")[-1, 0]))
