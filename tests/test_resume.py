"""--resume continues a run exactly: on CPU, weights at step N are bit-identical to those of a
run that never stopped."""

from __future__ import annotations

import pytest
import torch

from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.errors import GankitError
from gankit.training.loop import resume, train

from conftest import run_cli


def _state(path):
    return load_checkpoint(path)


def _assert_identical(a, b):
    for key in ("G", "D", "G_ema"):
        for name, value in a[key].items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, b[key][name]), f"{key}.{name} differs"
            else:  # a module's extra state, such as PGGAN's (resolution, alpha)
                assert value == b[key][name], f"{key}.{name} differs"
    for key in ("opt_G", "opt_D"):
        for pid, state in a[key]["state"].items():
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[key]["state"][pid][name]))
    assert a["step"] == b["step"] and a["images_seen"] == b["images_seen"]


@pytest.mark.parametrize(
    "preset, overrides",
    [
        # DCGAN: BatchNorm statistics, Adam moments, EMA and shuffled data order must all resume.
        ("dcgan-mnist", ["train.batch_size=16", "model.width=8", "train.gradient_accumulation=2",
                         "train.discriminator_steps=2"]),
        ("gan-ring8", ["train.batch_size=64"]),
        # Penalty interpolates, lazy R1 and DiffAugment draw random numbers every step: all resume.
        ("wgan-gp-mnist", ["train.batch_size=8", "model.width=4", "train.discriminator_steps=2",
                           "train.augment=diffaugment", "loss.penalties=[gp,r1]", "loss.r1_every=2"]),
    ],
)
def test_resume_is_bit_identical(tmp_path, preset, overrides):
    common = overrides + ["train.checkpoint_every=3", "train.log_every=1", "train.sample_every=100"]
    straight = config_lib.resolve(preset, common + ["train.steps=6"])
    train(straight, tmp_path / "straight")

    stopped = config_lib.resolve(preset, common + ["train.steps=3"])
    train(stopped, tmp_path / "stopped")
    resume(tmp_path / "stopped", ["train.steps=6"])

    _assert_identical(_state(tmp_path / "straight" / "checkpoints" / "latest.pt"),
                      _state(tmp_path / "stopped" / "checkpoints" / "latest.pt"))
    _assert_identical(_state(tmp_path / "straight" / "checkpoints" / "step-000006.pt"),
                      _state(tmp_path / "stopped" / "checkpoints" / "step-000006.pt"))


def test_resume_through_the_cli_continues_not_restarts(tmp_path):
    run_cli("train", "gan-ring8", "train.steps=4", "train.checkpoint_every=2", "train.log_every=2",
            "--out", str(tmp_path), "--name", "r", check=True)
    proc = run_cli("train", "--resume", str(tmp_path / "r"), "train.steps=8", check=True)
    assert f"run directory: {tmp_path / 'r'}" in proc.stdout
    assert "step 6/8" in proc.stderr and "step 2/8" not in proc.stderr
    payload = load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")
    assert payload["step"] == 8
    steps = [line for line in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert len(steps) == 4


def test_resume_judges_overrides_after_seed_aliases_expand(tmp_path):
    train(config_lib.resolve("gan-ring8", ["train.steps=2", "train.checkpoint_every=2", "train.log_every=2"]),
          tmp_path / "r")
    with pytest.raises(GankitError, match=r"not 'model\.spectral_norm_G'"):
        resume(tmp_path / "r", ["sng"])  # the seed flag for a model key
    resume(tmp_path / "r", ["spd=2", "acml=2", "train.steps=3"])  # seed flags for train keys
    cfg = config_lib.from_dict(load_checkpoint(tmp_path / "r" / "checkpoints" / "latest.pt")["config"])
    assert cfg.train.discriminator_steps == 2 and cfg.train.gradient_accumulation == 2 and cfg.train.steps == 3
