"""The training loop's seam: the objective makes the batches, G runs forward once per step, the
schedule sets the learning rate, and the low modules never import the training package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.latent import build_prior
from gankit.training.loop import build_run, train, training_loop
from gankit.training.schedule import Schedule
from gankit.utils import read_jsonl

CPU = torch.device("cpu")


def _two_forward_reference(cfg):
    """G's gradient after one step of the classic two-forward loop, written out by hand: the D phase
    makes fakes without grad, and the G phase runs G again on the same z after D's update (and on
    new z for each further G update)."""
    run = build_run(cfg, None, CPU)  # the same seed: the same weights, data order and noise stream
    G, D, t = run.G.train(), run.D.train(), cfg.train
    prior = build_prior(cfg.model)
    for _ in range(t.discriminator_steps):
        run.opt_D.zero_grad(set_to_none=True)
        drawn = []
        for _ in range(t.gradient_accumulation):
            real, labels = run.loader.next()
            z = prior.sample(len(real), run.noise, CPU)
            with torch.no_grad():
                fake = G(z, labels)
            # Non-saturating loss (Goodfellow et al. 2014), by hand.
            d_loss = F.softplus(-D(real, labels)).mean() + F.softplus(D(fake, labels)).mean()
            (d_loss / t.gradient_accumulation).backward()
            drawn.append((z, labels))
        run.opt_D.step()
    D.requires_grad_(False)
    for g_step in range(t.generator_steps):
        if g_step:  # a later G update: G steps, then draws new noise for the same real rows
            run.opt_G.step()
            drawn = [(prior.sample(len(z), run.noise, CPU), labels) for z, labels in drawn]
        run.opt_G.zero_grad(set_to_none=True)
        for z, labels in drawn:
            (F.softplus(-D(G(z, labels), labels)).mean() / t.gradient_accumulation).backward()
    return [p.grad.clone() for p in G.parameters()]  # of the last G update, before its step


@pytest.mark.parametrize("preset, overrides", [
    # MLP G/D on points, with several D steps and accumulated batches per update.
    ("gan-ring8", ["train.batch_size=32", "model.width=32", "train.discriminator_steps=2",
                   "train.gradient_accumulation=2"]),
    # Two G updates per step (DCGAN-tensorflow's habit): the second on new fakes from new noise.
    ("gan-ring8", ["train.batch_size=32", "model.width=32", "train.generator_steps=2",
                   "train.gradient_accumulation=2"]),
    # A conv DCGAN with its BatchNorm switched off: with BatchNorm, one forward fewer is one
    # running-statistics update fewer, which is meant to change the result.
    ("dcgan-mnist", ["train.batch_size=8", "model.width=8", "model.batchnorm_G=false", "model.batchnorm_D=false",
                     "train.channels_last=false"]),
])
def test_one_generator_forward_gives_the_two_forward_gradient(preset, overrides):
    cfg = config_lib.resolve(preset, overrides + ["train.steps=1", "train.ema_halflife_kimg=0"])
    run = build_run(cfg, None, CPU)
    calls = []
    run.G.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    training_loop(run, [])
    # Only the last D update's batches run G with a graph, and nothing runs G again for its first
    # update; each later G update runs it once per batch.
    t = cfg.train
    assert len(calls) == (t.discriminator_steps + t.generator_steps - 1) * t.gradient_accumulation
    loop_grads = [p.grad for p in run.G.parameters()]
    reference = _two_forward_reference(cfg)
    for ours, theirs in zip(loop_grads, reference, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)


def test_linear_schedule_holds_then_falls_to_zero():
    t = config_lib.resolve("gan-ring8", ["train.steps=100", "train.lr_G=1e-3", "train.lr_D=4e-3",
                                         "train.lr_schedule=linear", "train.lr_decay_fraction=0.5"]).train
    schedule = Schedule(t, images_per_step=10)  # 1000 images in the run; decay over the last 500
    assert schedule.phase(0).lr_G == 1e-3 and schedule.phase(499).lr_D == 4e-3
    assert schedule.phase(750).lr_G == pytest.approx(0.5e-3) and schedule.phase(750).lr_D == pytest.approx(2e-3)
    assert schedule.phase(990).lr_G == pytest.approx(2e-5)  # 10 of the 500 decay images left
    assert schedule.phase(1000).lr_G == 0.0
    constant_cfg = config_lib.resolve("gan-ring8", ["train.steps=100", "train.lr_G=2e-4"]).train
    constant = Schedule(constant_cfg, images_per_step=10)
    assert {constant.phase(n).lr_G for n in (0, 500, 999)} == {2e-4}  # today's presets: no change


def test_the_loop_applies_the_schedule_and_checkpoints_its_state(tmp_path):
    cfg = config_lib.resolve("gan-ring8", ["train.steps=4", "train.batch_size=16", "train.log_every=1",
                                           "train.lr_schedule=linear", "train.lr_decay_fraction=0.5",
                                           "train.lr_G=1e-3", "train.lr_D=1e-3"])
    train(cfg, tmp_path / "run")
    records = read_jsonl(tmp_path / "run" / "stats.jsonl")
    # 64 images, the last 32 decaying: steps 3 and 4 start with 32 and 16 images left of 32, so
    # they run at 1 and 1/2 of lr (as CycleGAN's code: the last epoch still moves, by 1/n).
    assert [r["lr_G"] for r in records] == pytest.approx([1e-3, 1e-3, 1e-3, 0.5e-3])
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")
    assert "objective" in payload and "schedule" in payload


def test_preview_inputs_are_fixed_noise_and_cycling_labels():
    cfg = config_lib.resolve("cgan-mnist", ["train.grid_samples=20", "model.width=8"])
    run = build_run(cfg, None, CPU)
    inputs = run.preview_inputs
    assert inputs["z"].shape == (20, cfg.model.z_dim)
    assert inputs["labels"].tolist() == [i % 10 for i in range(20)]
    images, labels, nrow = run.objective.preview(run.G_ema, inputs)
    assert images.shape == (20, 1, 28, 28) and nrow is None and torch.equal(labels, inputs["labels"])


LOW_MODULES = ["sampling.py", "checkpoint.py", "grids.py", "metrics", "losses", "nets", "data", "latent.py"]


@pytest.mark.parametrize("module", LOW_MODULES)
def test_low_modules_never_import_training(module):
    """Arrows point down: training uses sampling, metrics and checkpoints, never the reverse."""
    root = Path(gankit.__file__).parent / module
    for path in ([root] if root.is_file() else sorted(root.rglob("*.py"))):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("gankit.training") for n in names), f"{path.name} imports {names}"


def test_the_loop_stays_one_short_function_without_config_branches():
    source = (Path(gankit.__file__).parent / "training" / "loop.py").read_text()
    loop = next(node for node in ast.parse(source).body
                if isinstance(node, ast.FunctionDef) and node.name == "training_loop")
    assert loop.end_lineno - loop.lineno < 250
    branches = [ast.unparse(node.test) for node in ast.walk(loop) if isinstance(node, (ast.If, ast.IfExp))]
    assert not [test for test in branches if "cfg" in test], branches
