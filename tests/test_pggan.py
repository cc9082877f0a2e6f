"""PGGAN: its networks against the paper's definitions, the drift term, and SWD against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gankit.config import LossConfig, ModelConfig
from gankit.errors import GankitError
from gankit.losses import Batch
from gankit.metrics.swd import sliced_wasserstein_distance
from gankit.nets import build_nets
from gankit.nets.pggan import EqualizedConv2d, minibatch_stddev, pixel_norm
from gankit.penalties import PENALTIES


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
    with pytest.raises(GankitError, match="multiple of 4"):
        minibatch_stddev(torch.randn(6, 3, 2, 2))


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
