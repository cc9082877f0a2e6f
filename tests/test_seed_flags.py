"""The seed repositories' flags, typed exactly as their READMEs type them (README, "Seed flags")."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from gankit import aliases
from gankit import config as config_lib
from gankit.errors import GankitError
from gankit.losses import build_loss
from gankit.losses.hinge import HingeLoss
from gankit.losses.lsgan import LeastSquaresLoss

from conftest import assert_user_error, run_cli
from fakedata import write_fake_celeba

# Every alias, in each form a seed user types it, with the config value it must produce.
CASES = {
    "sng": (["-sng"], "model.spectral_norm_G", True),
    "snd": (["-snd"], "model.spectral_norm_D", True),
    "ema": (["--ema"], "eval.network", "G_ema"),
    "acml": (["-acml=2"], "train.gradient_accumulation", 2),
    "spd": (["-spd=2"], "train.discriminator_steps", 2),
    "rtype": (["--rtype=tnormal"], "model.latent", "truncnormal"),
    "aug_policy": (["--aug_policy=diff_aug"], "train.augment", "diffaugment"),
    "cg": (["-cg=bce"], "loss.generator", "nonsaturating"),
    "cd": (["-cd=wloss"], "loss.name", "wasserstein"),
    "model": (["--model", "sagan"], "model.name", "sagan"),
    "epochs": (["--epochs", "2"], "train.epochs", 2.0),
    "steps": (["--steps=100000"], "train.steps", 100000),
    "batch_size": (["--batch_size", "32"], "train.batch_size", 32),
    "lr": (["--lr", "5e-5"], "train.lr_G", 5e-5),
    "log_steps": (["--log_steps", "10"], "train.log_every", 10),
}


def _resolve(words: list[str], preset: str = "dcgan-mnist") -> config_lib.Config:
    args = aliases.rewrite_train_args([preset, *words])
    return config_lib.resolve(args[0], aliases.seed_model(args[0], args[1:]))


def _get(cfg, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def test_every_alias_has_a_case():
    assert set(CASES) == set(aliases.KEYS)


@pytest.mark.parametrize("alias", sorted(CASES))
def test_alias_in_every_form(alias):
    dashed, key, expected = CASES[alias]
    bare = [f"{alias}={dashed[1]}"] if len(dashed) == 2 else [dashed[0].lstrip("-")]
    one_dash = ["-" + dashed[0].lstrip("-"), *dashed[1:]]
    for words in (dashed, bare, one_dash, ["--" + dashed[0].lstrip("-"), *dashed[1:]]):
        assert _get(_resolve(words), key) == expected, words


def test_lr_sets_both_learning_rates_and_ema_is_a_bare_word():
    cfg = _resolve(["--lr", "5e-5", "ema"])
    assert (cfg.train.lr_G, cfg.train.lr_D, cfg.eval.network) == (5e-5, 5e-5, "G_ema")


def test_argparse_abbreviation_as_seed_001_types_it():
    # Seed 001's README runs `python main.py celeba --aug_polic=diff_aug`: argparse took the prefix.
    assert _resolve(["--aug_polic=diff_aug"]).train.augment == "diffaugment"


def test_seed_001_command_as_typed(tmp_path):
    """`gankit train dcgan-celeba -sng -snd --ema -acml=2 -spd=2 --rtype=tnormal --aug_policy=diff_aug
    -cg=hinge -cd=hinge`: checked with --dry-run as typed, then trained for one step."""
    write_fake_celeba(tmp_path / "data", n=132)  # 66 train faces; data.root is relative to where the user stands
    flags = ["-sng", "-snd", "--ema", "-acml=2", "-spd=2", "--rtype=tnormal", "--aug_policy=diff_aug",
             "-cg=hinge", "-cd=hinge"]
    proc = run_cli("train", "dcgan-celeba", *flags, "--dry-run", cwd=tmp_path, check=True)
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["model"]["spectral_norm_G"] and cfg["model"]["spectral_norm_D"]
    assert (cfg["train"]["gradient_accumulation"], cfg["train"]["discriminator_steps"]) == (2, 2)
    assert (cfg["model"]["latent"], cfg["train"]["augment"]) == ("truncnormal", "diffaugment")
    assert (cfg["loss"]["name"], cfg["loss"]["generator"], cfg["eval"]["network"]) == ("hinge", "hinge", "G_ema")
    assert "every check passed" in proc.stdout and not (tmp_path / "runs").exists()

    proc = run_cli("train", "dcgan-celeba", *flags, "--steps=1", "--batch_size", "4", "model.width=8",
                   "--name", "seed001", cwd=tmp_path, check=True)
    run = tmp_path / "runs" / "seed001"
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["step"] == 1 and stats[-1]["images_seen"] == 4 * 2 * 2
    command = (run / "command.txt").read_text()
    assert "gankit train dcgan-celeba -sng -snd --ema -acml=2 -spd=2 --rtype=tnormal" in command
    assert f"torch {torch.__version__}" in command and "Python 3." in command and "gankit 0." in command


def test_seed_000_command_counts_epochs_over_the_dataset(tmp_path):
    words = ["--model", "dcgan", "--epochs", "300", "--batch_size", "64", "--lr", "5e-5", "--log_steps", "10"]
    proc = run_cli("train", "dcgan-mnist", *words, "--dry-run", check=True)
    cfg = yaml.safe_load(proc.stdout)
    # mnist5k's train split is 4,500 digits: 70 whole batches of 64 per epoch.
    assert (cfg["train"]["epochs"], cfg["train"]["steps"]) == (300, 300 * 70)
    assert (cfg["train"]["lr_G"], cfg["train"]["lr_D"], cfg["train"]["log_every"]) == (5e-5, 5e-5, 10)
    # Epochs also count D steps and accumulation: a step then shows D 4 batches.
    assert config_lib.steps_from_epochs(_resolve(words + ["-spd=2", "-acml=2"]), range(4500)).train.steps == 5250
    # Trained for real: 0.1 epoch of 4,500 digits in batches of 64 is 7 batches, so 7 steps.
    run_cli("train", "dcgan-mnist", *words[:2], "--epochs", "0.1", "--log_steps", "7", "model.width=8",
            "--name", "s000", "--out", str(tmp_path), check=True)
    saved = yaml.safe_load((tmp_path / "s000" / "config.yaml").read_text())
    assert (saved["train"]["steps"], saved["train"]["epochs"]) == (7, 0.1)
    stats = [json.loads(line) for line in (tmp_path / "s000" / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["step"] == 7
    # A resumed run takes a length in steps instead, seed-style; --dry-run checks it and trains nothing.
    proc = run_cli("train", "--resume", str(tmp_path / "s000"), "--steps=9", "--dry-run", check=True)
    assert (yaml.safe_load(proc.stdout)["train"]["steps"], yaml.safe_load(proc.stdout)["train"]["epochs"]) == (9, 0)
    assert len((tmp_path / "s000" / "stats.jsonl").read_text().splitlines()) == len(stats)


def test_steps_given_later_replace_epochs():
    cfg = config_lib.with_overrides(_resolve(["--epochs", "3"]), ["train.steps=50"])
    assert (cfg.train.epochs, cfg.train.steps) == (0.0, 50)


def test_separate_losses_for_g_and_d():
    """`cg=hinge cd=ls`: D's terms are LSGAN's and G's are hinge's (it used to be LSGAN for both)."""
    cfg = _resolve(["cg=hinge", "cd=ls"])
    loss = build_loss(cfg.loss)
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([0.5, -0.4, 1.5])

    class D(torch.nn.Module):
        def forward(self, x, labels=None):
            return x

    nets = type("Nets", (), {"D": D()})()
    batch = type("Batch", (), {"real": real, "fake": fake, "labels": None})()
    assert torch.equal(loss.discriminator(nets, batch)["D/adv"], LeastSquaresLoss().d_terms(real, fake))
    assert torch.equal(loss.generator(nets, batch)["G/adv"], HingeLoss().g_terms(fake))
    # By hand: LSGAN D = 1/2 mean (r - 1)^2 + 1/2 mean f^2; hinge G = -mean f.
    assert loss.discriminator(nets, batch)["D/adv"].item() == pytest.approx(
        0.5 * ((0.7**2 + 2.2**2 + 1.0) / 3) + 0.5 * ((0.25 + 0.16 + 2.25) / 3))
    assert loss.generator(nets, batch)["G/adv"].item() == pytest.approx(-(0.5 - 0.4 + 1.5) / 3)


def test_a_loss_with_its_own_network_is_not_paired():
    cfg = config_lib.resolve("acgan-mnist", ["cg=hinge"])
    with pytest.raises(GankitError, match="loss acgan trains its own extra network"):
        build_loss(cfg.loss)


def test_seed_000_model_names_a_recipe():
    assert _resolve(["--model", "wgan"], "wgan-celeba").loss.name == "wasserstein"  # the preset already is it
    with pytest.raises(GankitError, match="preset wgan-celeba"):
        _resolve(["--model", "wgan"], "dcgan-celeba")
    with pytest.raises(GankitError, match="preset sagan-celeba.*model.name=sagan"):
        _resolve(["--model", "sagan"], "dcgan-celeba")


@pytest.mark.parametrize("words, fragments", [
    (["--gpu", "0"], ["'--gpu'", "nearest supported one"]),
    (["--batchsize", "64"], ["'--batchsize'", "'--batch_size'"]),
    (["-apd=2"], ["'-apd'", "'--spd'"]),
    (["--epochs"], ["--epochs needs a value, such as --epochs 300"]),
])
def test_unsupported_seed_flag_names_the_nearest(words, fragments):
    with pytest.raises(GankitError) as info:
        aliases.rewrite_train_args(["dcgan-mnist", *words])
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unsupported_flag_from_the_command_line(tmp_path):
    assert_user_error(run_cli("train", "dcgan-celeba", "-sng", "--nproc_per_node=3", "--out", str(tmp_path)),
                      "'--nproc_per_node'")
    assert_user_error(run_cli("train", "celeba", "--ema"), "'celeba' is a dataset", "dcgan-celeba")
    assert not list(tmp_path.iterdir())


def test_every_train_command_in_the_readme_seed_sections_resolves():
    """The README's "Seed flags" and "Coming from a seed repository" commands, as written."""
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### Seed flags"):readme.index("### Zoo config keys")]
    commands = set(re.findall(r"`(gankit train [^`]+)`", section))
    commands |= {line[2:] for line in section.splitlines() if line.startswith("$ gankit train")}
    commands = {c for c in commands if " celeba" not in c}  # `gankit train celeba` is the refused example
    assert len(commands) >= 10
    for command in commands:
        words = aliases.rewrite_train_args(shlex.split(command)[2:])
        preset = words[0]
        cfg = config_lib.resolve(preset, aliases.seed_model(preset, [w for w in words[1:] if "=" in w or
                                                                     w in aliases.FLAGS]))
        assert cfg.preset == preset, command
