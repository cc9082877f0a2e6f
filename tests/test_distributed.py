"""Multi-process training on CPU with gloo. Each test spawns its processes itself, with the
environment torchrun gives them; the 2-rank scenarios share one spawn (tests/ddp_worker.py).

What is proved: N ranks x B/N compute what one process computes with B (WGAN-GP through a
biased last layer, R1, accumulation with no_sync), ranks agree on EMA, RNG and data position, a
2-rank resume restores each rank's own RNG state and is exact, only rank 0 writes, a failing
rank ends the job with one sentence, and a signal to one rank (or to `--nproc`'s launcher) stops
every rank after the same step, saved.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ddp_worker import EQUIVALENCE, REFERENCE, STEPS, ZOO, float64
from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.errors import GankitError
from gankit.training.loop import train

WORKER = str(Path(__file__).with_name("ddp_worker.py"))
HANG = 300  # seconds: far beyond a healthy job on a loaded 2-core machine; a hang fails, not blocks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], cwds: list[Path], world: int = 2) -> list[subprocess.Popen]:
    """`python ARGS` as ranks 0..world-1 of one job, as torchrun would start them."""
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
               "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, *args], cwd=cwds[rank], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return procs


def spawn(args: list[str], cwds: list[Path], world: int = 2) -> list[subprocess.CompletedProcess]:
    return wait(start(args, cwds, world))


def wait(procs: list[subprocess.Popen]) -> list[subprocess.CompletedProcess]:
    """Each process's exit code and output; a job still running after HANG seconds fails the test."""
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=HANG)
            results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"the {len(procs)}-process job hung for {HANG}s")
    return results


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    results = spawn([WORKER, str(out), "zoo", "equivalence", "resume", "ranks-agree"], [out, out])
    for rank, r in enumerate(results):
        assert r.returncode == 0, f"rank {rank}:\n{r.stdout}\n{r.stderr}"
    return out


def _max_difference(a: dict, b: dict) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict[str, dict]:
    """The 1 process x 64 runs, in float64 as the 2-rank runs (see ddp_worker.float64)."""
    out, payloads = tmp_path_factory.mktemp("one-process"), {}
    with float64():
        for name in sorted(set(REFERENCE.values())):
            preset, overrides = EQUIVALENCE[name]
            run_dir = train(config_lib.resolve(preset, STEPS + overrides), out / name)
            payloads[name] = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    return payloads


@pytest.mark.parametrize("name", list(EQUIVALENCE))
def test_two_ranks_of_half_the_batch_match_one_process(job, one_process, name):
    """After 20 steps, G and D of 2 ranks x 32 equal those of 1 process x 64 to 1e-5 (the issue's
    bound; in float64 they agree to ~1e-16, and 1e-10 is asserted); and 2 ranks x 2 accumulated
    rounds of 16 equal 1 process x 64."""
    one = one_process[REFERENCE[name]]
    two = load_checkpoint(job / "equivalence" / name / "checkpoints" / "latest.pt")
    assert two["step"] == one["step"] == 20 and two["images_seen"] == one["images_seen"]
    assert two["world_size"] == 2 and one["world_size"] == 1
    for net in ("G", "D", "G_ema"):
        assert next(iter(two[net].values())).dtype == torch.float64
        assert _max_difference(one[net], two[net]) < 1e-10, net


@pytest.mark.parametrize("preset", list(ZOO))
def test_models_with_more_than_forward_train_under_ddp(job, preset):
    """Loss-called methods (D.logits_and_classes, G.reconstruct) go through DDP's gradient sync, and
    a growing net's blocks join it as they fade in."""
    payload = load_checkpoint(job / "zoo" / preset / "checkpoints" / "latest.pt")
    assert payload["step"] == 2 and payload["world_size"] == 2
    stats = [json.loads(line) for line in (job / "zoo" / preset / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats if "event" not in s] == [1, 2]


def test_accumulation_all_reduces_once_and_matches_the_whole_batch(job):
    for rank in (0, 1):
        rounds = torch.load(job / "ranks-agree" / f"rounds{rank}.pt")
        assert rounds["reductions"] == 1  # no_sync covered the forward and backward of rounds 1 and 2
        assert torch.allclose(rounds["grad"], rounds["reference_grad"], atol=1e-6)


def test_every_rank_holds_the_same_ema_rng_and_data_position(job):
    rank0, rank1 = (torch.load(job / "ranks-agree" / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for key in ("G_ema", "D"):  # BatchNorm buffers included
        for name in rank0[key]:
            assert torch.equal(rank0[key][name], rank1[key][name]), f"{key}.{name}"
    assert torch.equal(rank0["rng"]["torch"], rank1["rng"]["torch"])
    assert torch.equal(rank0["noise"], rank1["noise"])
    assert rank0["data"]["position"] == rank1["data"]["position"]
    assert torch.equal(rank0["data"]["order"], rank1["data"]["order"])


def test_two_rank_resume_is_exact(job):
    """Stopped at step 3 and resumed to 6 on 2 ranks equals 6 steps straight, bit for bit, though
    rank 1's random state differs from rank 0's (ddp_worker.rank_1_draws_on_its_own): each rank
    got its own back."""
    straight = load_checkpoint(job / "resume" / "straight" / "checkpoints" / "latest.pt")
    resumed = load_checkpoint(job / "resume" / "stopped" / "checkpoints" / "latest.pt")
    assert straight["step"] == resumed["step"] == 6
    at_3 = load_checkpoint(job / "resume" / "stopped" / "checkpoints" / "step-000003.pt")
    rank0, rank1 = at_3["rng_per_rank"]
    assert not torch.equal(rank0["torch"], rank1["torch"])  # the states the resume had to tell apart
    assert torch.equal(rank0["torch"], at_3["rng"]["torch"]) and torch.equal(rank0["noise"], rank1["noise"])
    assert torch.equal(rank0["data"]["generator"], rank1["data"]["generator"])  # the data position
    for net in ("G", "D", "G_ema"):
        for name in straight[net]:
            assert torch.equal(straight[net][name], resumed[net][name]), f"{net}.{name}"
    for opt in ("opt_G", "opt_D"):
        for pid, state in straight[opt]["state"].items():
            for key, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(resumed[opt]["state"][pid][key]))


def test_resume_with_another_world_size_warns(job, tmp_path):
    import shutil

    from gankit.training.loop import resume

    shutil.copytree(job / "resume" / "straight", tmp_path / "run")
    with pytest.warns(UserWarning, match="trained on 2 processes with 1.*no longer bit-exact"):
        resume(tmp_path / "run", ["train.steps=7"])
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["step"] == 7


def _listing(run_dir: Path) -> list[str]:
    # TensorBoard names its file after host, pid and time: compare that there is one, not its name.
    return sorted("events.out.tfevents" if p.name.startswith("events.out.tfevents") else str(p.relative_to(run_dir))
                  for p in run_dir.rglob("*"))


def test_nproc_writes_only_from_rank_0_and_the_run_looks_like_one_process(tmp_path):
    """The real CLI, `gankit train ... --nproc 2`, through torch.distributed.run."""
    args = ["train", "gan-ring8", "train.steps=4", "train.log_every=2", "train.checkpoint_every=2",
            "train.sample_every=2"]
    for name, nproc in (("multi", "2"), ("single", "1")):
        proc = subprocess.run([sys.executable, "-m", "gankit", *args, "--nproc", nproc, "--out", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=HANG, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("run directory:") == 1  # said once, by rank 0
    single = tmp_path / "single" / "gan-ring8-000"
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == ["gan-ring8-000"]
    run = tmp_path / "multi" / "gan-ring8-000"
    assert _listing(run) == _listing(single)
    assert (run / "config.yaml").read_text() == (single / "config.yaml").read_text()
    assert len((run / "stats.jsonl").read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi", "single"]  # nothing else written


def test_a_failing_rank_stops_the_job_with_one_sentence_from_rank_0(tmp_path):
    """Rank 1's node lacks the image folder (bad data on rank 1): both ranks exit 2 promptly,
    rank 0 says why in one sentence, rank 1 says nothing, and nobody hangs."""
    from fakedata import write_image_folder

    good, bad = tmp_path / "node0", tmp_path / "node1"
    write_image_folder(good / "faces", 70)
    bad.mkdir()
    args = ["-m", "gankit", "train", "dcgan-mnist", "data.name=imagefolder", "data.path=faces",
            "data.channels=1", "model.width=4", "train.steps=2", "--out", str(tmp_path / "runs")]
    rank0, rank1 = spawn(args, [good, bad])
    assert rank0.returncode == 2 and rank1.returncode == 2, (rank0.stderr, rank1.stderr)
    errors = [line for line in rank0.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: rank 1 of 2 failed: "), rank0.stderr
    assert "faces" in errors[0] and rank0.stderr.strip().endswith(errors[0]) and "Traceback" not in rank0.stderr
    assert rank1.stderr.strip() == "", rank1.stderr


def test_nproc_failure_is_one_sentence_and_exit_2(tmp_path, cli):
    """Both ranks refuse the same missing dataset; the user reads it once."""
    proc = cli("train", "dcgan-mnist", "data.name=mnist", f"data.root={tmp_path / 'none'}", "--nproc", "2",
               "--out", str(tmp_path / "runs"))
    from conftest import assert_user_error

    assert_user_error(proc, "MNIST")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _wait_for_training(stats: Path) -> None:
    """Until the run's first stats line: the loop runs and its signal handlers are in place."""
    deadline = time.monotonic() + HANG
    while not (stats.exists() and stats.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("signalled", [0, 1])
def test_a_signal_to_one_rank_stops_every_rank_after_the_same_step(tmp_path, signalled):
    """SIGTERM reaches one process only (`kill PID`, or SLURM signalling one node's tasks): both ranks
    still stop after the same step, rank 0 saves latest.pt there and says so once, both exit 143.
    Before AgreeOnStop the signalled rank left alone and the job hung in the next all-reduce."""
    procs = start(["-m", "gankit", "train", "gan-ring8", "train.steps=1000000", "train.log_every=10",
                   "--out", "runs"], [tmp_path, tmp_path])
    stats = tmp_path / "runs" / "gan-ring8-000" / "stats.jsonl"
    _wait_for_training(stats)
    procs[signalled].send_signal(signal.SIGTERM)
    rank0, rank1 = wait(procs)
    assert rank0.returncode == rank1.returncode == 143, (rank0.stderr, rank1.stderr)
    said = [line for line in rank0.stderr.splitlines() if line.startswith("stopped at step ")]
    assert len(said) == 1 and "stopped" not in rank1.stderr, (rank0.stderr, rank1.stderr)
    step = int(said[0].split()[3].rstrip(";"))
    assert load_checkpoint(stats.parent / "checkpoints" / "latest.pt")["step"] == step > 0


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGUSR1, 138)])
def test_nproc_stopped_by_a_signal_saves_and_exits_as_one_process(tmp_path, signum, code):
    """A scheduler's signal to `gankit train --nproc 2`: torchrun's agent passes it to both
    workers, which save at the same step; the job exits 128 + N with the two lines one process
    prints (before: SIGTERM gave a traceback of torchrun's SignalException, its log line and
    exit 1; SIGUSR1, which torchrun does not pass on by default, killed the agent alone)."""
    launcher = subprocess.Popen([sys.executable, "-m", "gankit", "train", "gan-ring8", "train.steps=1000000",
                                 "train.log_every=10", "--nproc", "2", "--out", "runs"], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stats = tmp_path / "runs" / "gan-ring8-000" / "stats.jsonl"
    _wait_for_training(stats)
    launcher.send_signal(signum)
    (result,) = wait([launcher])
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("step ")]
    assert len(lines) == 2 and lines[0].startswith(f"{signum.name}: finishing this step"), result.stderr
    step = int(lines[1].removeprefix("stopped at step ").split(";")[0])
    assert load_checkpoint(stats.parent / "checkpoints" / "latest.pt")["step"] == step > 0


def test_a_batch_that_does_not_divide_among_ranks_is_refused():
    from gankit.ranks import Ranks

    with pytest.raises(GankitError, match=r"train.batch_size=63 does not divide among 2 processes"):
        Ranks(0, 2).rows(63)
    assert Ranks(1, 2).rows(64) == slice(32, 64)


def test_ranks_equal_states_are_stored_once():
    """Ranks' equal data orders (one int64 per image each) cost the checkpoint one copy, not one per rank."""
    import io

    from gankit.training.distributed import _share_equal_tensors

    order = torch.randperm(100_000)
    states = [{"data": {"order": order.clone(), "position": 64}, "torch": torch.full((8,), rank, dtype=torch.uint8)}
              for rank in range(4)]
    shared = _share_equal_tensors(states)
    assert all(s["data"]["order"] is shared[0]["data"]["order"] for s in shared)
    assert [s["torch"][0].item() for s in shared] == [0, 1, 2, 3]  # what differs stays each rank's own

    def size(obj) -> int:
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        return buffer.tell()

    assert size(shared) < 1.1 * size(states[0]) < size(states) / 3
