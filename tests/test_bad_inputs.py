"""The bad-input corpus: every mistake a user can make gets exit 2, one `error:` line on stderr,
no traceback, and leaves every file as it was.

The cases run `gankit.cli.main` in this process (torch is imported once, not per case) against
one workspace: a tiny trained ring8 run, a run holding another model's checkpoint, a checkpoint
whose weights do not fit its config, a garbage checkpoint, a run locked by another process, and
a marker file. After each case the whole workspace is compared with its state before.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch

from gankit import config as config_lib
from gankit.cli import main
from gankit.training.loop import train

TINY = ["train.batch_size=8", "model.width=8", "train.steps=2", "train.checkpoint_every=2", "train.log_every=1",
        "train.sample_every=1000"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("workspace")
    (ws / "runs").mkdir()
    train(config_lib.resolve("gan-ring8", TINY), ws / "runs" / "run")
    train(config_lib.resolve("gan-ring8", TINY), ws / "runs" / "foreign")
    train(config_lib.resolve("gan-ring8", TINY + ["model.depth=2"]), ws / "other")
    (ws / "runs" / "foreign" / "checkpoints" / "latest.pt").write_bytes(
        (ws / "other" / "checkpoints" / "latest.pt").read_bytes())
    payload = torch.load(ws / "runs" / "run" / "checkpoints" / "latest.pt", weights_only=True)
    payload["G_ema"]["net.0.weight"] = torch.zeros(2, 2)
    torch.save(payload, ws / "mangled.pt")
    (ws / "garbage.pt").write_bytes(b"not a checkpoint")
    (ws / "afile").write_text("a file, not a folder")
    (ws / "marker.txt").write_text("must survive every case\n")
    train(config_lib.resolve("gan-ring8", TINY), ws / "runs" / "locked")
    holder = subprocess.Popen([sys.executable, "-c", "import time; from gankit.rundir import run_lock\n"
                               f"with run_lock({str(ws / 'runs' / 'locked')!r}):\n"
                               "    print('held', flush=True); time.sleep(900)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield ws
    holder.kill()
    holder.wait()


def _snapshot(root):
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


RUN = "{ws}/runs/run"
OUT = ["--out", "{ws}/runs"]
CASES = {
    # Config values, refused while parsing (before torch is imported).
    "lr-inf": ["train", "gan-ring8", "train.lr_G=.inf", *OUT],
    "lr-nan": ["train", "gan-ring8", "train.lr_D=nan", *OUT],
    "lr-huge-overflows-to-inf": ["train", "gan-ring8", "train.lr_G=1e999", *OUT],
    "lr-negative": ["train", "gan-ring8", "train.lr_G=-1e-4", *OUT],
    "gp-weight-nan": ["train", "wgan-gp-ring8", "loss.gp_weight=.nan", *OUT],
    "steps-zero": ["train", "gan-ring8", "train.steps=0", *OUT],
    "steps-word": ["train", "gan-ring8", "train.steps=many", *OUT],
    "unknown-key": ["train", "gan-ring8", "train.step=3", *OUT],
    "key-without-value": ["train", "gan-ring8", "train", *OUT],
    "section-as-value": ["train", "gan-ring8", "train=3", *OUT],
    "unknown-preset": ["train", "dcgan-mnst", *OUT],
    "no-preset": ["train", *OUT],
    "on-divergence-word": ["train", "gan-ring8", "train.on_divergence=maybe", *OUT],
    "max-rollbacks-negative": ["train", "gan-ring8", "train.max_rollbacks=-1", *OUT],
    "keep-checkpoints-negative": ["train", "gan-ring8", "train.keep_checkpoints=-2", *OUT],
    "device-tpu": ["train", "gan-ring8", "train.device=tpu", *OUT],
    "optimizer-sgd": ["train", "gan-ring8", "train.optimizer=sgd", *OUT],
    "betas-one": ["train", "gan-ring8", "train.betas=[0.5]", *OUT],
    "unknown-model": ["train", "gan-ring8", "model.name=nope", *OUT],
    "unknown-loss": ["train", "gan-ring8", "loss.name=nope", *OUT],
    # --name and --out.
    "name-with-slash": ["train", "gan-ring8", *OUT, "--name", "a/b"],
    "name-escapes-out": ["train", "gan-ring8", *OUT, "--name", "../x"],
    "name-dotdot": ["train", "gan-ring8", *OUT, "--name", ".."],
    "name-empty": ["train", "gan-ring8", *OUT, "--name", ""],
    "name-taken": ["train", "gan-ring8", *OUT, "--name", "run"],
    "out-is-a-file": ["train", "gan-ring8", "--out", "{ws}/afile"],
    # Refused once torch is there, before the first step.
    "device-cuda-without-gpu": ["train", "gan-ring8", "train.device=cuda", *OUT, "--name", "cuda"],
    "unknown-dataset": ["train", "gan-ring8", "data.name=nope", *OUT, "--name", "nodata"],
    "unknown-metric": ["train", "gan-ring8", "eval.metrics=[nope]", *OUT, "--name", "nometric"],
    "eval-samples-below-minimum": ["train", "gan-ring8", "eval.metrics=[modes]", "eval.num_samples=5", *OUT,
                                   "--name", "fewsamples"],
    # A metric's classifier is loaded before the first step, not found missing after hours of training.
    "stacked-without-classifier": ["train", "dcgan-stacked-mnist", "data.stacked_size=2000",
                                   "eval.cache_dir={ws}/no-cache", *OUT, "--name", "nostacked"],
    "cfid-without-classifier": ["train", "dcgan-mnist", "eval.metrics=[cfid]", "eval.cache_dir={ws}/no-cache", *OUT,
                                "--name", "nocfid"],
    "fid-without-inception-weights": ["train", "dcgan-mnist", "eval.metrics=[fid]",
                                      "eval.inception_weights={ws}/missing.pth", *OUT, "--name", "nofid"],
    "label-preservation-without-classifier": ["train", "cgan-mnist", "eval.metrics=[label_preservation]",
                                              "eval.cache_dir={ws}/no-cache", *OUT, "--name", "nolabels"],
    # click's own usage errors, as one line.
    "presets-extra-argument": ["presets", "foo"],
    "unknown-option": ["train", "--bogus"],
    "sample-missing-run": ["sample"],
    "n-not-a-number": ["sample", RUN, "--n", "ten", "--out", "{ws}/s.png"],
    # Resume.
    "resume-model-key": ["train", "--resume", RUN, "model.width=3"],
    "resume-seed": ["train", "--resume", RUN, "train.seed=3"],
    "resume-optimizer": ["train", "--resume", RUN, "train.optimizer=rmsprop"],
    "resume-lr-inf": ["train", "--resume", RUN, "train.lr_G=inf"],
    "resume-with-preset": ["train", "--resume", RUN, "gan-ring8"],
    "resume-missing-dir": ["train", "--resume", "{ws}/runs/missing"],
    "resume-foreign-checkpoint": ["train", "--resume", "{ws}/runs/foreign", "train.steps=4"],
    "resume-locked-run": ["train", "--resume", "{ws}/runs/locked", "train.steps=4"],
    # Sample.
    "sample-jpg": ["sample", RUN, "--out", "{ws}/s.jpg"],
    "sample-n-zero": ["sample", RUN, "--n", "0", "--out", "{ws}/s.png"],
    "sample-more-than-the-disk-holds": ["sample", RUN, "--n", "1000000000000", "--out", "{ws}/s.npy"],
    "sample-grid-too-big": ["sample", RUN, "--n", "20000", "--out", "{ws}/s.png"],
    "sample-missing-step": ["sample", RUN, "--checkpoint", "7", "--out", "{ws}/s.png"],
    "sample-no-best": ["sample", RUN, "--checkpoint", "best", "--out", "{ws}/s.png"],
    "sample-truncation-negative": ["sample", RUN, "--truncation", "-1", "--out", "{ws}/s.png"],
    "sample-weights-do-not-fit": ["sample", RUN, "--checkpoint", "{ws}/mangled.pt", "--out", "{ws}/s.png"],
    "sample-garbage-checkpoint": ["sample", RUN, "--checkpoint", "{ws}/garbage.pt", "--out", "{ws}/s.png"],
    # Eval.
    "eval-one-sample": ["eval", RUN, "--n", "1"],
    "eval-n-zero": ["eval", RUN, "--n", "0"],
    "eval-empty-metrics": ["eval", RUN, "--metrics", ","],
    "eval-unknown-metric": ["eval", RUN, "--metrics", "nope"],
    "eval-image-metric-on-points": ["eval", RUN, "--metrics", "kid", "--n", "10"],
    "eval-missing-run": ["eval", "{ws}/runs/missing"],
    "eval-weights-do-not-fit": ["eval", RUN, "--checkpoint", "{ws}/mangled.pt", "--n", "100"],
    # Other commands.
    "classifier-zero-epochs": ["classifier", "train", "--data", "mnist5k", "--epochs", "0"],
    "prepare-unknown": ["data", "prepare", "nope"],
}


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_sentence_exit_2_and_changes_nothing(name, workspace, capfd):
    args = [arg.replace("{ws}", str(workspace)) for arg in CASES[name]]
    before = _snapshot(workspace)
    capfd.readouterr()
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capfd.readouterr()
    assert info.value.code == 2, (info.value.code, out, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert _snapshot(workspace) == before
    assert (workspace / "marker.txt").read_text() == "must survive every case\n"
