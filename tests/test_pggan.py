"""PGGAN: its networks against the paper's definitions, the drift term, and SWD against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.config import LossConfig, ModelConfig
from gankit.errors import GankitError
from gankit.losses import Batch
from gankit.metrics.swd import sliced_wasserstein_distance
from gankit.nets import build_nets
from gankit.nets.pggan import EqualizedConv2d, minibatch_stddev, pixel_norm
from gankit.penalties import PENALTIES
from gankit.training.schedule import Phase, Schedule, build_schedule
from gankit.utils import read_jsonl
from test_resume import _assert_identical

from conftest import assert_user_error, run_cli


def _pggan(resolution=16, channels=1, width=8):
    torch.manual_seed(0)
    cfg = ModelConfig(name="pggan", z_dim=16, width=width, max_width=32)
    return build_nets(cfg, (channels, resolution, resolution))


def test_equalized_conv_stores_unit_weights_and_scales_by_he_at_run_time():
    conv = EqualizedConv2d(64, 32, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.02)
    x = torch.randn(2, 64, 5, 5)
    expected = F.conv2d(x, conv.weight * math.sqrt(2 / (64 * 9)), conv.bias, padding=1)
    assert torch.allclose(conv(x), expected)


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    y = pixel_norm(torch.randn(3, 16, 4, 4) * 7)
    assert torch.allclose(y.pow(2).mean(1), torch.ones(3, 4, 4), atol=1e-4)


def test_minibatch_stddev_matches_a_hand_computation_over_groups_of_four():
    x = torch.randn(8, 3, 2, 2, dtype=torch.float64)
    out = minibatch_stddev(x, 4)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    for i in range(8):
        group = x[i % 2::2]  # the authors' reshape puts samples i, i+2, i+4, i+6 together
        std = np.sqrt(group.numpy().var(axis=0) + 1e-8).mean()
        assert torch.allclose(out[i, 3], torch.full((2, 2), std, dtype=torch.float64))
    odd = torch.randn(6, 3, 2, 2, dtype=torch.float64)  # 6 is no multiple of 4: groups of 3
    assert torch.allclose(minibatch_stddev(odd, 4)[0, 3], torch.tensor(odd[0::2].var(0, unbiased=False).add(1e-8)
                                                                        .sqrt().mean().item(), dtype=odd.dtype))


def test_every_block_exists_up_front_and_the_phase_changes_no_parameter():
    nets = _pggan()
    shapes = [p.shape for p in nets.G.parameters()] + [p.shape for p in nets.D.parameters()]
    z = torch.randn(4, 16)
    for resolution in (4, 8, 16):
        for net in (nets.G, nets.D):
            net.set_phase(resolution, 0.5)
        fake = nets.G(z)
        assert fake.shape == (4, 1, resolution, resolution)
        assert nets.D(fake).shape == (4,)
    assert shapes == [p.shape for p in nets.G.parameters()] + [p.shape for p in nets.D.parameters()]
    with pytest.raises(GankitError, match="cannot work at 32 px"):
        nets.G.set_phase(32, 1.0)


def test_fade_in_starts_from_the_upsampled_and_downsampled_old_networks():
    nets = _pggan()
    z, x = torch.randn(4, 16), torch.randn(4, 1, 16, 16)
    for net in (nets.G, nets.D):
        net.set_phase(8, 1.0)
    old_fake, old_logits = nets.G(z), nets.D(F.avg_pool2d(x, 2))
    for net in (nets.G, nets.D):
        net.set_phase(16, 0.0)
    # alpha = 0: G is the old 8 px output, nearest-upsampled; D scores the 2x2-average-pooled image.
    assert torch.allclose(nets.G(z), F.interpolate(old_fake, scale_factor=2, mode="nearest"), atol=1e-6)
    assert torch.allclose(nets.D(x), old_logits, atol=1e-5)
    for net in (nets.G, nets.D):
        net.set_phase(16, 1.0)
    full = nets.G(z)
    nets.G.set_phase(16, 0.25)
    old = F.interpolate(old_fake, scale_factor=2, mode="nearest")
    assert torch.allclose(nets.G(z), 0.75 * old + 0.25 * full, atol=1e-5)


def test_the_phase_travels_in_the_state_dict():
    nets, fresh = _pggan(), _pggan()
    nets.G.set_phase(8, 0.3)
    fresh.G.load_state_dict(torch.load(_roundtrip(nets.G.state_dict()), weights_only=True))
    assert (fresh.G.resolution, fresh.G.alpha) == (8, 0.3)


def _roundtrip(obj):
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_resolution_must_be_a_power_of_two_from_8():
    for shape in ((1, 28, 28), (1, 4, 4)):
        with pytest.raises(GankitError, match="power of two from 8"):
            build_nets(ModelConfig(name="pggan"), shape)


def test_drift_penalty_is_a_thousandth_of_the_mean_squared_real_score():
    nets = _pggan(8)
    real = torch.randn(4, 1, 8, 8)
    penalty = PENALTIES.build("drift", LossConfig(penalties=["drift"]))
    terms = penalty(nets, Batch(real=real, fake=real, z=torch.zeros(4, 16), labels=None), step=0)
    assert terms["D/drift"].item() == pytest.approx(0.001 * (nets.D(real) ** 2).mean().item(), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# SWD against a straightforward numpy version: the same protocol, written independently.


def _np_blur(x, gain=1.0):
    k = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0 * gain
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    h, w = x.shape[2:]
    return sum(k[i, j] * padded[:, :, i:i + h, j:j + w] for i in range(5) for j in range(5))


def _np_descriptors(band, xs, ys):
    n = band.shape[0]
    patches = np.stack([band[k // 128, :, ys[k] - 3:ys[k] + 4, xs[k] - 3:xs[k] + 4] for k in range(n * 128)])
    patches = patches - patches.mean(axis=(0, 2, 3), keepdims=True)
    patches = patches / patches.std(axis=(0, 2, 3), keepdims=True)
    return patches.reshape(n * 128, -1)


def _np_swd(real, fake, seed):
    rng = np.random.RandomState(seed)
    x = [np.round((im.astype(np.float32) + 1) * np.float32(127.5)).clip(0, 255).astype(np.float64)
         for im in (real, fake)]
    pyramids = []
    for images in x:
        pyramid = [images]
        while pyramid[-1].shape[-1] // 2 >= 16:
            low = _np_blur(pyramid[-1])[:, :, ::2, ::2]
            up = np.zeros_like(pyramid[-1])
            up[:, :, ::2, ::2] = low
            pyramid[-1] = pyramid[-1] - _np_blur(up, 4.0)
            pyramid.append(low)
        pyramids.append(pyramid)
    scores = []
    for real_band, fake_band in zip(*pyramids, strict=True):
        n, c, h, w = real_band.shape
        xs = rng.randint(3, w - 3, size=n * 128)
        ys = rng.randint(3, h - 3, size=n * 128)
        a, b = (_np_descriptors(band, xs, ys) for band in (real_band, fake_band))
        per_repeat = []
        for _ in range(4):
            dirs = rng.standard_normal((a.shape[1], 128))
            dirs /= np.sqrt((dirs ** 2).sum(axis=0, keepdims=True))
            per_repeat.append(np.abs(np.sort(a @ dirs, axis=0) - np.sort(b @ dirs, axis=0)).mean())
        scores.append(1e3 * np.mean(per_repeat))
    return scores, float(np.mean(scores))


def _smooth_images(n, seed, size=32):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def test_swd_matches_a_numpy_version():
    real, fake = _smooth_images(24, 0), _smooth_images(24, 1) + 0.1 * torch.randn(24, 3, 32, 32)
    fake = fake.clamp(-1, 1)
    scores = sliced_wasserstein_distance(real, fake, seed=5)
    levels, mean = _np_swd(real.numpy(), fake.numpy(), seed=5)
    assert list(scores) == ["swd_32", "swd_16", "swd"]
    assert [scores["swd_32"], scores["swd_16"]] == pytest.approx(levels, rel=1e-6)
    assert scores["swd"] == pytest.approx(mean, rel=1e-6)


def test_swd_of_a_set_with_itself_is_about_zero_and_grows_with_noise():
    real = _smooth_images(16, 2)
    noise = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    same = sliced_wasserstein_distance(real, real.clone(), seed=0)["swd"]
    values = [sliced_wasserstein_distance(real, (real + s * noise).clamp(-1, 1), seed=0)["swd"]
              for s in (0.05, 0.2, 0.5)]
    assert same == pytest.approx(0, abs=1e-9)  # the two sets share their patch positions
    assert 0 < values[0] < values[1] < values[2]


# ---------------------------------------------------------------------------------------------
# The schedule, the loader's per-call batch size, EMA in logged images, exact resume, the CLI.

# 4 -> 8 px on mnist5k with tiny nets: 16 images at 4 px (2 steps of 8), a fade of 16 images
# (4 steps of 4), then 8 px on.
TINY_GROWTH = ["data.resolution=8", "model.width=4", "model.max_width=8", "model.z_dim=8",
               "train.fade_kimg=0.016", "train.stable_kimg=0.016", "train.batch_per_resolution={4: 8, 8: 4}",
               "train.grid_samples=4", "train.log_every=1", "train.sample_every=100", "train.checkpoint_every=4"]


def test_progressive_schedule_phases_in_images():
    cfg = config_lib.resolve("pggan-mnist", ["train.fade_kimg=1", "train.stable_kimg=2"])
    schedule = build_schedule(cfg, images_per_step=32)
    assert isinstance(schedule, Schedule)  # the same mechanism as CycleGAN's lr decay, extended
    expected = {0: ("stable 4", 4, 1.0, 32), 1999: ("stable 4", 4, 1.0, 32), 2000: ("fade 8", 8, 0.0, 32),
                2250: ("fade 8", 8, 0.25, 32), 3000: ("stable 8", 8, 1.0, 32), 5500: ("fade 16", 16, 0.5, 16),
                8000: ("fade 32", 32, 0.0, 16),
                8500: ("fade 32", 32, 0.5, 16), 9000: ("stable 32", 32, 1.0, 16), 10**7: ("stable 32", 32, 1.0, 16)}
    for images, (stage, resolution, alpha, batch) in expected.items():
        phase = schedule.phase(images)
        assert (phase.stage, phase.resolution, phase.alpha, phase.batch_size) == (stage, resolution, alpha, batch)
        assert (phase.lr_G, phase.lr_D) == (1e-3, 1e-3)
    constant = build_schedule(config_lib.resolve("dcgan-mnist"), images_per_step=64).phase(12345)
    assert (constant.resolution, constant.alpha, constant.batch_size, constant.lr_G) == (None, 1.0, 64, 2e-4)
    # A progressive run's lrs follow train.lr_schedule like any other run's.
    linear = config_lib.with_overrides(cfg, ["train.lr_schedule=linear", "train.steps=100"])
    decaying = build_schedule(linear, images_per_step=32)
    assert decaying.phase(0).lr_G == 1e-3 and decaying.phase(3200).lr_G == 0.0
    assert decaying.phase(2400).lr_G == pytest.approx(0.5e-3) and decaying.phase(2400).stage == "fade 8"


def test_real_images_are_resized_and_blended_during_a_fade():
    x = torch.rand(2, 1, 32, 32)
    x8 = x.view(2, 1, 8, 4, 8, 4).mean(dim=(3, 5))  # 4x4 block means
    x4 = x.view(2, 1, 4, 8, 4, 8).mean(dim=(3, 5))
    x4_up = x4.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.allclose(Phase(1, 1, "stable 8", 2, 8).real(x), x8, atol=1e-6)
    assert torch.allclose(Phase(1, 1, "fade 8", 2, 8, alpha=0.3).real(x), 0.7 * x4_up + 0.3 * x8, atol=1e-6)
    assert Phase(1, 1, "constant", 2, 32).real(x) is x


def test_in_memory_loader_changes_batch_size_and_resumes_exactly():
    from gankit.data.base import ImageTensors

    data = ImageTensors(torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1), None)
    loader = data.loader(4, seed=0, device=torch.device("cpu"))
    sizes = [4, 4, 8, 2, 8, 8, 4, 6]
    first = [loader.next(s)[0].flatten() for s in sizes[:3]]
    state = loader.state_dict()
    rest = [loader.next(s)[0].flatten() for s in sizes[3:]]
    assert [len(b) for b in first + rest] == sizes
    assert len(torch.cat(first).unique()) == 16  # one epoch: no image twice
    again = data.loader(4, seed=0, device=torch.device("cpu"))
    again.load_state_dict(state)
    assert all(torch.equal(a, again.next(s)[0].flatten()) for a, s in zip(rest, sizes[3:], strict=True))


def test_stream_loader_changes_batch_size_and_resumes_exactly(tmp_path):
    import h5py

    from gankit.data.stream import StreamedImages

    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["images"] = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1)
    data = StreamedImages(tmp_path / "c.h5", None, 0, 20, (1, 1, 1), num_workers=0)
    loader = data.loader(4, seed=0, device=torch.device("cpu"))
    sizes = [4, 8, 2, 8, 8, 4]
    first = [loader.next(s)[0].flatten() for s in sizes[:2]]
    state = loader.state_dict()
    rest = [loader.next(s)[0].flatten() for s in sizes[2:]]
    assert [len(b) for b in first + rest] == sizes
    assert len(torch.cat(first + rest[:1]).unique()) == 14  # 4 + 8 + 2 of one epoch's 20
    again = data.loader(4, seed=0, device=torch.device("cpu"))
    again.load_state_dict(state)
    assert all(torch.equal(a, again.next(s)[0].flatten()) for a, s in zip(rest, sizes[2:], strict=True))


def test_ema_half_life_is_in_the_images_the_logs_count(tmp_path):
    """5 D steps of 8 images per G step: 40 logged images per step, so a half-life of 0.08 kimg is
    2 steps. (EMA used to be told 8 images per step, making it 5x longer in logged kimg.)"""
    from gankit.checkpoint import pick_device
    from gankit.training.hooks import StatsLogger
    from gankit.training.loop import build_run, training_loop

    cfg = config_lib.resolve("gan-ring8", ["train.steps=2", "train.batch_size=8", "train.discriminator_steps=5",
                                           "train.ema_halflife_kimg=0.08", "train.lr_G=1e-30", "train.log_every=1"])
    run = build_run(cfg, tmp_path, pick_device("cpu"))
    with torch.no_grad():
        for p in run.G_ema.parameters():
            p.zero_()  # G barely moves at lr 1e-30, so G_ema = G * (1 - beta**steps)
    training_loop(run, [StatsLogger(tmp_path, 1)])
    logged = read_jsonl(tmp_path / "stats.jsonl")[-1]["kimg"]
    assert logged == pytest.approx(0.08)  # one half-life in logged kimg...
    for p_ema, p in zip(run.G_ema.parameters(), run.G.parameters(), strict=True):
        assert torch.allclose(p_ema, 0.5 * p, atol=1e-6)  # ...halves the distance to G


def test_resume_in_the_middle_of_a_fade_is_bit_identical(tmp_path):
    from gankit.training.loop import resume, train

    train(config_lib.resolve("pggan-mnist", TINY_GROWTH + ["train.steps=8"]), tmp_path / "straight")
    train(config_lib.resolve("pggan-mnist", TINY_GROWTH + ["train.steps=4"]), tmp_path / "stopped")
    stopped = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "latest.pt")
    # Its last step began 4 images into the 16-image fade: stopped in the middle of it.
    assert stopped["G"]["_extra_state"] == {"resolution": 8, "alpha": 0.25}
    resume(tmp_path / "stopped", ["train.steps=8"])
    _assert_identical(load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt"),
                      load_checkpoint(tmp_path / "stopped" / "checkpoints" / "latest.pt"))


def test_pggan_grows_through_the_cli_and_samples_at_its_resolution(tmp_path):
    tiny = [o for o in TINY_GROWTH if not o.startswith(("data.resolution", "train.batch_per"))]
    run_cli("train", "pggan-mnist", *tiny, "data.resolution=16", "train.batch_per_resolution={4: 8, 8: 8, 16: 4}",
            "train.steps=14", "--out", str(tmp_path), "--name", "p", check=True)
    run_dir = tmp_path / "p"
    phases = [r for r in read_jsonl(run_dir / "stats.jsonl") if r.get("event") == "phase"]
    assert [(p["stage"], p["batch_size"]) for p in phases] == [
        ("stable 4", 8), ("fade 8", 8), ("stable 8", 8), ("fade 16", 4), ("stable 16", 4)]
    assert [p["images_seen"] for p in phases] == [8, 16, 32, 48, 64]
    assert all({"resolution", "alpha", "kimg"} <= set(p) for p in phases)
    for r in ("04", "08", "16"):
        assert (run_dir / "samples" / f"res-{r}.png").is_file() and (run_dir / "checkpoints" / f"res-{r}.pt").is_file()
    run_cli("sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "s.npy"),
            "--checkpoint", str(run_dir / "checkpoints" / "res-08.pt"), check=True)
    assert np.load(tmp_path / "s.npy").shape == (4, 1, 8, 8)  # that checkpoint's resolution
    run_cli("sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "t.npy"), check=True)
    assert np.load(tmp_path / "t.npy").shape == (4, 1, 16, 16)


@pytest.mark.parametrize("override, fragment", [
    ("data.resolution=24", "power of two from 8, not 24"),
    ("train.fade_kimg=0", "train.fade_kimg must be a positive number"),
    ("train.stable_kimg=-1", "train.stable_kimg must be a positive number"),
    ("train.batch_per_resolution={4: 16, 8: 16, 32: 16}", "no batch size for 16 px"),
])
def test_bad_growth_settings_are_one_sentence(tmp_path, override, fragment):
    proc = run_cli("train", "pggan-mnist", override, "--out", str(tmp_path / "runs"))
    assert_user_error(proc, fragment)
    assert not (tmp_path / "runs").exists()
