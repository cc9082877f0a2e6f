"""The real CLI, end to end, for a few steps on CPU."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import assert_user_error, run_cli


def _files(run_dir):
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    proc = run_cli("train", "gan-ring8", "train.steps=20", "train.log_every=5", "train.sample_every=10",
                   "train.checkpoint_every=10", "--out", str(out), check=True)
    return out, proc


def test_train_writes_every_promised_file(ring_run):
    out, proc = ring_run
    run_dir = out / "gan-ring8-000"
    assert f"run directory: {run_dir}" in proc.stdout
    files = _files(run_dir)
    for expected in ("config.yaml", "stats.jsonl", "metrics.jsonl", "samples/step-000010.png",
                     "samples/step-000020.png", "checkpoints/latest.pt", "checkpoints/step-000010.pt",
                     "checkpoints/step-000020.pt", "plots/losses.png"):
        assert expected in files, files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert (run_dir / "metrics.jsonl").read_text() == ""
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["train"]["steps"] == 20 and cfg["preset"] == "gan-ring8"
    records = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    for key in ("images_seen", "kimg", "D/adv", "G/adv", "lr_G", "lr_D", "seconds", "img_per_s"):
        assert key in records[-1]
    assert records[-1]["images_seen"] == 20 * 256
    # In a non-TTY (CI) log the progress is plain lines with step, kimg, losses, img/s, ETA.
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("step 20/20")][0]
    for word in ("kimg", "D/adv", "G/adv", "img/s", "ETA"):
        assert word in line
    assert "\r" not in proc.stderr
    assert Image.open(run_dir / "plots" / "losses.png").size[0] > 100


def test_a_second_run_never_overwrites_the_first(ring_run):
    out, _ = ring_run
    before = (out / "gan-ring8-000" / "stats.jsonl").read_text()
    run_cli("train", "gan-ring8", "train.steps=2", "--out", str(out), check=True)
    assert (out / "gan-ring8-001" / "checkpoints" / "latest.pt").exists()
    assert (out / "gan-ring8-000" / "stats.jsonl").read_text() == before


def test_sample_png_and_npy(ring_run, tmp_path):
    out, _ = ring_run
    run_dir = out / "gan-ring8-000"
    run_cli("sample", str(run_dir), "--n", "300", "--out", str(tmp_path / "s.npy"), check=True)
    points = np.load(tmp_path / "s.npy")
    assert points.shape == (300, 2) and points.dtype == np.float32 and np.isfinite(points).all()
    run_cli("sample", str(run_dir), "--n", "300", "--out", str(tmp_path / "s.png"), "--seed", "3",
            "--checkpoint", str(run_dir / "checkpoints" / "step-000010.pt"), check=True)
    assert Image.open(tmp_path / "s.png").format == "PNG"
    # Same seed, same samples.
    run_cli("sample", str(run_dir), "--n", "300", "--out", str(tmp_path / "t.npy"), check=True)
    assert np.array_equal(np.load(tmp_path / "t.npy"), points)


def test_dcgan_mnist_end_to_end_and_image_samples(tmp_path):
    run_cli("train", "dcgan-mnist", "train.steps=4", "train.batch_size=16", "train.log_every=2",
            "--out", str(tmp_path), "--name", "digits", check=True)
    run_dir = tmp_path / "digits"
    grid = Image.open(run_dir / "samples" / "step-000004.png")
    assert grid.size[0] > 28 * 4
    run_cli("sample", str(run_dir), "--n", "10", "--out", str(tmp_path / "d.npy"), check=True)
    images = np.load(tmp_path / "d.npy")
    assert images.shape == (10, 1, 28, 28) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1
    run_cli("sample", str(run_dir), "--n", "10", "--out", str(tmp_path / "d.png"), check=True)
    assert Image.open(tmp_path / "d.png").format == "PNG"
    # DCGAN is unconditional, though MNIST has labels: no class to draw, so --class is refused.
    assert not (tmp_path / "d.labels.npy").exists()
    assert_user_error(run_cli("sample", str(run_dir), "--n", "4", "--class", "3", "--out", str(tmp_path / "e.png")),
                      "unconditional")


def test_dry_run_prints_config_and_creates_nothing(tmp_path):
    proc = run_cli("train", "dcgan-mnist", "train.seed=7", "--dry-run", "--out", str(tmp_path / "r"), check=True)
    assert yaml.safe_load(proc.stdout)["train"]["seed"] == 7
    assert not (tmp_path / "r").exists()


def test_presets_lists_descriptions():
    proc = run_cli("presets", check=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("gan-ring8 ")][0]
    assert "ring" in line


def test_help_does_not_import_torch():
    code = "import sys, gankit.cli; assert 'torch' not in sys.modules, 'torch imported'"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code], check=True)
    assert "Commands:" in run_cli("--help", check=True).stdout  # its speed (budget 0.5 s) is in benchmarks/


# --- Bad input: one sentence, exit 2, no traceback, nothing lost. -----------------------------


def test_unknown_preset(tmp_path):
    assert_user_error(run_cli("train", "dcgan-mnst", "--out", str(tmp_path)), "unknown preset", "dcgan-mnist")
    assert not any(tmp_path.iterdir())


def test_unknown_key_and_bad_value(tmp_path):
    assert_user_error(run_cli("train", "gan-ring8", "train.step=3", "--out", str(tmp_path)), "train.steps")
    assert_user_error(run_cli("train", "gan-ring8", "train.steps=many", "--out", str(tmp_path)), "train.steps")
    assert not any(tmp_path.iterdir())


def test_missing_dataset_leaves_no_run_behind(tmp_path):
    proc = run_cli("train", "dcgan-mnist-full", f"data.root={tmp_path / 'data'}", "--out", str(tmp_path / "runs"))
    assert_user_error(proc, "train-images-idx3-ubyte.gz", "data.download=true")
    assert list((tmp_path / "runs").iterdir()) == []


def test_unwritable_output_directory(tmp_path):
    if os.geteuid() == 0:  # root writes through file modes; sysfs refuses even root
        target = "/sys/gankit-runs"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = str(locked / "runs")
    assert_user_error(run_cli("train", "gan-ring8", "--out", target), "writable")


def test_output_path_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    assert_user_error(run_cli("train", "gan-ring8", "--out", str(blocker)), "--out")
    assert blocker.read_text() == "keep me"


def test_existing_name_is_not_overwritten(ring_run):
    out, _ = ring_run
    before = (out / "gan-ring8-000" / "config.yaml").read_text()
    proc = run_cli("train", "gan-ring8", "--out", str(out), "--name", "gan-ring8-000")
    assert_user_error(proc, "already exists", "--resume")
    assert (out / "gan-ring8-000" / "config.yaml").read_text() == before


def test_resume_without_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_user_error(run_cli("train", "--resume", str(tmp_path / "empty")), "no checkpoints/latest.pt")


def test_resume_refuses_to_change_the_model(ring_run):
    out, _ = ring_run
    assert_user_error(run_cli("train", "--resume", str(out / "gan-ring8-000"), "model.width=3"),
                      "only train.* and eval.*")


def test_corrupted_checkpoint(ring_run, tmp_path):
    out, _ = ring_run
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(out / "gan-ring8-000", run_dir)
    latest = run_dir / "checkpoints" / "latest.pt"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])  # truncated, as by a full disk or a killed copy
    assert_user_error(run_cli("train", "--resume", str(run_dir)), "cannot be read", "corrupted")
    assert latest.read_bytes() == data[: len(data) // 2]  # left as it was, for the user to inspect
    assert_user_error(run_cli("sample", str(run_dir), "--out", str(tmp_path / "x.png")), "corrupted")


def test_sample_bad_suffix(ring_run, tmp_path):
    out, _ = ring_run
    assert_user_error(run_cli("sample", str(out / "gan-ring8-000"), "--out", str(tmp_path / "x.jpg")), ".png")


def test_sampling_needs_no_dataset_on_disk(tmp_path):
    """A run trained on files that are gone (another machine, a deleted copy) still samples."""
    import shutil

    from gankit import config as config_lib
    from gankit.sampling import sample_to_file
    from gankit.training.loop import train

    from fakedata import write_fake_mnist

    write_fake_mnist(tmp_path / "data")
    cfg = config_lib.resolve("dcgan-mnist-full", [f"data.root={tmp_path / 'data'}", "train.steps=1",
                                                  "train.batch_size=8", "model.width=8"])
    train(cfg, tmp_path / "run")
    shutil.rmtree(tmp_path / "data")
    sample_to_file(tmp_path / "run", 5, tmp_path / "s.npy")
    assert np.load(tmp_path / "s.npy").shape == (5, 1, 28, 28)


def test_eval_help_names_every_registered_metric():
    """The help text is written out (`--help` must not import torch); this keeps it in step."""
    from gankit.metrics import list_metrics

    text = " ".join(run_cli("eval", "--help", check=True).stdout.split())
    listed = text.split("metric names:")[1].split("[default")[0].replace(",", " ").split()
    assert sorted(listed) == sorted(list_metrics())
