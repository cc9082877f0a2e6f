"""`gankit sweep`: run every trial of a spec, `jobs` at a time, resumably, and keep a manifest.

Layout: OUT/SWEEP_NAME/sweep.yaml (the manifest: the spec, and each trial's status, error and
time) and OUT/SWEEP_NAME/TRIAL_NAME/, an ordinary run directory that `gankit train --resume`,
`gankit eval` and `gankit report` all read.

Resuming is by construction: the state of a trial is its run directory (config.yaml, its
checkpoints, and sweep-status.json, which the trial process writes when it ends). Running the
same command again skips trials that are done, resumes the rest from checkpoints/latest.pt,
and retries failed ones. A kill -9 of the sweep takes its trial processes with it (Linux
parent-death signal), and the trial lock keeps two processes from ever training one run.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gankit import config as config_lib
from gankit.errors import GankitError
from gankit.study.spec import SLURM_KEYS, Spec, Trial, load_spec
from gankit.study.trial import STATUS_FILE, read_status, run_trial
from gankit.utils import atomic_write_text, exclusive_lock

MANIFEST = "sweep.yaml"
LOCK = ".sweep.lock"


def machine_slots() -> tuple[int, int]:
    """(CPU cores this process may use, CUDA devices)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception:  # torch present but CUDA broken: the CPU still trains
        gpus = 0
    return cores, gpus


def plan(jobs: int | None) -> tuple[int, int, int]:
    """(jobs, threads per trial, GPUs): by default one trial per GPU, else one per core.

    Each trial gets cores // jobs threads (at least 1; at most $OMP_NUM_THREADS when set), so
    `jobs` trials never ask for more threads than there are cores; PyTorch's default (every
    core per process) would make two trials on 2 cores fight over 4 threads, and a thread
    that waits at a barrier for a descheduled sibling costs far more than it adds."""
    if jobs is not None and jobs < 1:
        raise GankitError(f"--jobs must be 1 or more, not {jobs}.")
    cores, gpus = machine_slots()
    jobs = jobs or (gpus or cores)
    threads = max(1, cores // jobs)
    cap = os.environ.get("OMP_NUM_THREADS", "")
    if cap.isdigit() and int(cap) > 0:  # a limit the user set for this shell holds for the trials too
        threads = min(threads, int(cap))
    return jobs, threads, gpus


# ---------------------------------------------------------------------------------------------
# The sweep folder and its manifest.


def _trial_status(run_dir: Path) -> dict[str, Any]:
    """What the run directory says about a trial: done, failed, interrupted or pending."""
    status = read_status(run_dir)
    state = status.get("status")
    if state in ("done", "failed"):
        return status
    if state in ("running", "interrupted") or (run_dir / "checkpoints" / "latest.pt").is_file():
        return {**status, "status": "interrupted"}  # its process is gone: it resumes from its checkpoint
    return {"status": "pending"}


def _entry(trial: Trial, status: dict[str, Any]) -> dict[str, Any]:
    entry = {"name": trial.name, "setting": trial.setting, "seed": trial.seed, "preset": trial.preset,
             "overrides": trial.overrides, "status": status.get("status", "pending")}
    for key in ("error", "seconds", "job_id", "resumed_from"):
        if status.get(key) is not None:
            entry[key] = round(status[key], 2) if key == "seconds" else status[key]
    return entry


class Manifest:
    """sweep.yaml: rewritten atomically whenever a trial changes state."""

    def __init__(self, spec: Spec, folder: Path):
        self.spec, self.folder = spec, folder
        self.status: dict[str, dict[str, Any]] = {}

    def refresh(self) -> None:
        for trial in self.spec.trials:
            job = {"job_id": self.status[trial.name]["job_id"]} if "job_id" in self.status.get(trial.name, {}) else {}
            self.status[trial.name] = {**job, **_trial_status(self.folder / trial.name)}

    def set(self, trial: Trial, **status: Any) -> None:
        self.status[trial.name] = status
        self.save()

    def save(self) -> None:
        body = {
            "sweep": self.spec.name, "spec_file": str(self.spec.path), "fingerprint": self.spec.fingerprint,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "counts": self.counts(), "spec": self.spec.raw,
            "trials": [_entry(t, self.status.get(t.name, {})) for t in self.spec.trials],
        }
        # libyaml's emitter where PyYAML has it: rewritten twice per trial, the manifest of a
        # 25-trial study costs 11 ms per write in pure Python.
        text = yaml.dump(body, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, width=120)
        atomic_write_text(self.folder / MANIFEST, text)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for status in self.status.values():
            out[status.get("status", "pending")] = out.get(status.get("status", "pending"), 0) + 1
        return out


def check_folder(spec: Spec, folder: Path) -> None:
    """Refuse a folder that holds anything but this very sweep (nothing there is touched)."""
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            stored = yaml.safe_load(manifest.read_text()) or {}
        except (OSError, yaml.YAMLError):
            stored = {}
        if stored.get("fingerprint") != spec.fingerprint:
            source = stored.get("spec_file", "another spec")
            raise GankitError(f"{folder} holds a different sweep (made from {source}); "
                              "pass another --out, or run the spec that made it.")
    elif folder.is_dir() and any(folder.iterdir()):
        raise GankitError(f"{folder} already holds files that are not a gankit sweep; pass another --out.")


def check_classifiers(spec: Spec) -> None:
    """cfid and cis need a trained classifier: say so before any trial trains, not after."""
    from gankit.config import DataConfig, EvalConfig
    from gankit.metrics.classifier import default_classifier_path
    from gankit.metrics.evaluate import cache_root

    for trial in spec.trials:
        ev, data = trial.config["eval"], trial.config["data"]
        if not {"cfid", "cis"} & set(ev["metrics"]):
            continue
        path = Path(ev["classifier"]) if ev["classifier"] else default_classifier_path(
            cache_root(EvalConfig(**ev)), DataConfig(**data))
        if not path.is_file():
            raise GankitError(f"trial {trial.name} scores cfid/cis with the classifier {path}, which does not exist; "
                              f"train it first with `gankit classifier train --data {data['name']}`.")


def sweep_lock(folder: Path):
    return exclusive_lock(folder / LOCK, lambda: GankitError(
        f"another `gankit sweep` is running {folder}; wait for it to end, or stop it."))


def prepare_trials(spec: Spec, folder: Path) -> None:
    """Each trial's run directory with its resolved config.yaml, written once."""
    for trial in spec.trials:
        run_dir = folder / trial.name
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "config.yaml").is_file():
            config_lib.save(config_lib.from_dict(trial.config), run_dir / "config.yaml")


# ---------------------------------------------------------------------------------------------
# Launchers.


def _die_with_parent() -> None:
    """In the child, before exec: die when the sweep process dies, even by kill -9 (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the trial lock still stops a restarted sweep from training it twice


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"trial process killed by signal {signal.Signals(-code).name}"
    return f"trial process exited with code {code}"


def run_local(spec: Spec, folder: Path, manifest: Manifest, todo: list[Trial], jobs: int, threads: int, gpus: int,
              log: Callable[[str], None]) -> None:
    """Run `todo` as separate processes, `jobs` at a time; each failure stays with its trial.

    The sweep sleeps until a trial ends: one thread per trial process blocks in its wait() and
    hands the pid over, so the parent spends no CPU while trials train and starts the next
    trial the moment a slot frees (polling every 50 ms cost both)."""
    free_slots = list(range(jobs))
    running: dict[int, tuple[subprocess.Popen, Trial, int, float]] = {}
    ended: queue.SimpleQueue[int] = queue.SimpleQueue()
    waiting = list(todo)
    total, finished = len(todo), 0
    try:
        while waiting or running:
            while waiting and free_slots:
                trial, slot = waiting.pop(0), free_slots.pop(0)
                run_dir = folder / trial.name
                env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)  # one GPU per concurrent trial
                with open(run_dir / "train.log", "ab") as out:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "gankit.study.trial", str(run_dir), "--threads", str(threads)],
                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                    )
                running[proc.pid] = (proc, trial, slot, time.perf_counter())
                threading.Thread(target=lambda p=proc: (p.wait(), ended.put(p.pid)), daemon=True).start()
                manifest.set(trial, status="running", pid=proc.pid)
            proc, trial, slot, started = running.pop(ended.get())  # blocks; Ctrl-C still interrupts it
            free_slots.append(slot)
            finished += 1
            status = read_status(folder / trial.name)
            if status.get("status") not in ("done", "failed"):
                status = {"status": "failed", "error": _exit_reason(proc.returncode),
                          "seconds": time.perf_counter() - started}
            manifest.set(trial, **status)
            tail = f": {status['error']}" if status["status"] == "failed" else ""
            log(f"[{finished}/{total}] {status['status']} {trial.name} ({status.get('seconds', 0):.0f}s){tail}")
    finally:
        for proc, _, _, _ in running.values():  # Ctrl-C: stop what we started, keep their checkpoints
            proc.terminate()
        for proc, trial, _, _ in running.values():
            proc.wait()
            manifest.status[trial.name] = {**read_status(folder / trial.name), "status": "interrupted"}
        if running:
            manifest.save()


def slurm_parameters(spec: Spec) -> dict[str, Any]:
    params = {SLURM_KEYS[key]: value for key, value in spec.slurm.items()}
    params.setdefault("timeout_min", 60)
    params.setdefault("cpus_per_task", 1)
    params["name"] = f"gankit-{spec.name}"
    return params


def run_submitit(spec: Spec, folder: Path, manifest: Manifest, todo: list[Trial], cluster: str,
                 log: Callable[[str], None]) -> None:
    """Submit each trial as one job (a SLURM job array) through submitit and wait for them all.

    `cluster="local"` is submitit's LocalExecutor: the same submission, pickling and result path
    without a cluster, which is how the tests exercise this launcher."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder / ".submitit", cluster=cluster)
    params = slurm_parameters(spec)
    if cluster != "slurm":  # the local executor knows no SLURM keys; it runs what it can
        params = {k: v for k, v in params.items() if not k.startswith("slurm_") and k not in ("mem_gb",)}
    executor.update_parameters(**params)
    threads = int(spec.slurm.get("cpus_per_trial", 1))
    with executor.batch():
        jobs = [(trial, executor.submit(run_trial, str(folder / trial.name), threads)) for trial in todo]
    for trial, job in jobs:
        manifest.status[trial.name] = {"status": "submitted", "job_id": str(job.job_id)}
    manifest.save()
    log(f"submitted {len(jobs)} jobs ({jobs[0][1].job_id.split('_')[0] if jobs else '-'}); waiting for them")
    pending = dict(enumerate(jobs))
    finished = 0
    while pending:
        time.sleep(1.0)
        for key, (trial, job) in list(pending.items()):
            if not job.done():
                continue
            del pending[key]
            finished += 1
            try:
                status = job.result()
            except Exception as exc:  # the job itself died (time limit, node failure, out of memory)
                status = {"status": "failed", "error": (str(exc).strip().splitlines() or ["job failed"])[-1]}
            manifest.set(trial, **status, job_id=str(job.job_id))
            tail = f": {status['error']}" if status.get("status") == "failed" else ""
            log(f"[{finished}/{len(jobs)}] {status.get('status')} {trial.name} (job {job.job_id}){tail}")


# ---------------------------------------------------------------------------------------------


def describe(spec: Spec, folder: Path, jobs: int, threads: int, launcher: str) -> str:
    """--dry-run: the trials, their state, and their resolved overrides."""
    lines = [f"sweep {spec.name}: {len(spec.trials)} trials into {folder}",
             f"launcher {launcher}: " + (f"{jobs} at a time, {threads} threads each" if launcher == "local"
                                         else ", ".join(f"{k}={v}" for k, v in slurm_parameters(spec).items()))]
    for trial in spec.trials:
        state = _trial_status(folder / trial.name)["status"]
        lines.append(f"{trial.name}  [{state}]\n    gankit train {trial.preset} {' '.join(trial.overrides)}")
    return "\n".join(lines)


def sweep(spec_path: Path, out: Path, jobs: int | None = None, launcher: str = "local", dry_run: bool = False,
          log: Callable[[str], None] = print, cluster: str | None = None) -> dict[str, Any]:
    """Run (or resume) the sweep of `spec_path` under `out`; return the manifest's counts."""
    if launcher not in ("local", "slurm"):
        raise GankitError(f"--launcher must be local or slurm, not '{launcher}'.")
    if jobs is not None and jobs < 1:  # before anything slow: a typo should answer at once
        raise GankitError(f"--jobs must be 1 or more, not {jobs}.")
    spec = load_spec(spec_path)
    jobs, threads, gpus = plan(jobs)
    folder = Path(out) / spec.name
    check_folder(spec, folder)
    if dry_run:
        log(describe(spec, folder, jobs, threads, launcher))
        return {}
    check_classifiers(spec)
    cluster = cluster or launcher
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise GankitError("--launcher slurm needs SLURM's sbatch on PATH; run on the cluster's login node, "
                          "or use --launcher local.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GankitError(f"cannot create {folder} ({exc.strerror}); choose a writable --out.") from None
    with sweep_lock(folder):
        prepare_trials(spec, folder)
        manifest = Manifest(spec, folder)
        manifest.refresh()
        manifest.save()
        todo = [t for t in spec.trials if manifest.status[t.name]["status"] != "done"]
        done = len(spec.trials) - len(todo)
        log(f"sweep {spec.name}: {len(spec.trials)} trials, {done} already done, {len(todo)} to run"
            + (f", {jobs} at a time with {threads} threads each" if cluster == "local" and launcher == "local" else ""))
        if launcher == "local":
            run_local(spec, folder, manifest, todo, jobs, threads, gpus, log)
        else:
            run_submitit(spec, folder, manifest, todo, cluster, log)
        manifest.refresh()
        manifest.save()
    counts = manifest.counts()
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    log(f"sweep {spec.name}: {summary}; manifest {folder / MANIFEST}")
    return counts


__all__ = ["sweep", "plan", "STATUS_FILE", "MANIFEST"]
