"""The zoo's objectives and tricks, each checked against an independent reference: a value
worked out by hand, a closed form, or a second library routine (torch.linalg.svdvals)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gankit import config as config_lib
from gankit.augment import build_augment
from gankit.augment.diffaugment import DiffAugment, color, cutout, translation
from gankit.config import LossConfig, ModelConfig, TrainConfig
from gankit.errors import GankitError
from gankit.latent import PRIORS
from gankit.losses import Batch, build_loss
from gankit.nets import Nets, build_nets
from gankit.penalties import PENALTIES
from gankit.training.loop import build_run, training_loop


class HalfSquaredNorm(nn.Module):
    """D(x) = 1/2 |x|^2 per sample, so grad_x D = x: every gradient is known in closed form."""

    def forward(self, x, labels=None):
        return 0.5 * x.flatten(1).pow(2).sum(1)


def _quadratic_nets():
    return Nets(G=nn.Identity(), D=HalfSquaredNorm())


def test_gradient_penalty_matches_a_hand_computed_value():
    real = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 2.0], [0.0, 0.0]]], [[[0.0, 0.0], [3.0, 4.0]]]])
    fake = torch.zeros_like(real)
    penalty = PENALTIES.build("gp", LossConfig())
    torch.manual_seed(7)
    terms = penalty(_quadratic_nets(), Batch(real=real, fake=fake, z=torch.zeros(3, 1), labels=None), step=0)
    torch.manual_seed(7)
    eps = torch.rand(3).numpy().astype(np.float64)  # the coefficients the penalty drew
    # x_hat_i = eps_i * real_i; grad D(x_hat_i) = x_hat_i, so its norm is eps_i * |real_i| with
    # |real_i| = 1, 2, 5 -- taken per sample, never over the whole batch.
    norms = eps * np.array([1.0, 2.0, 5.0])
    expected = 10.0 * np.mean((norms - 1.0) ** 2)
    assert terms["D/gp"].item() == pytest.approx(expected, rel=1e-5)
    # A batch-wide norm would give a different number: the check can tell them apart.
    assert abs(10.0 * (np.sqrt((norms**2).sum()) - 1) ** 2 - expected) > 1


def test_wgan_div_and_r1_match_hand_computed_values():
    real = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # norms 5 and 1
    fake = torch.tensor([[0.0, 2.0], [1.0, 0.0]])  # norms 2 and 1
    batch = Batch(real=real, fake=fake, z=torch.zeros(2, 1), labels=None)
    div = PENALTIES.build("div", LossConfig())  # k = 2, p = 6
    expected_div = 2.0 * 0.5 * (np.mean([5.0**6, 1.0]) + np.mean([2.0**6, 1.0]))
    assert div(_quadratic_nets(), batch, step=0)["D/div"].item() == pytest.approx(expected_div, rel=1e-6)
    r1 = PENALTIES.build("r1", LossConfig(r1_gamma=10.0, r1_every=4))
    # gamma/2 * mean |x|^2 over reals, times the lazy interval 4.
    assert r1(_quadratic_nets(), batch, step=8)["D/r1"].item() == pytest.approx(5.0 * 13.0 * 4)
    assert r1(_quadratic_nets(), batch, step=9) == {}


@pytest.mark.parametrize(
    "name, d_expected, g_expected",
    [
        # logits real = [2, -1], fake = [0.5, -3]; sigma = logistic
        ("minimax", lambda r, f: np.mean(-np.log(_sig(r))) + np.mean(-np.log(1 - _sig(f))),
         lambda f: np.mean(np.log(1 - _sig(f)))),
        ("nonsaturating", lambda r, f: np.mean(-np.log(_sig(r))) + np.mean(-np.log(1 - _sig(f))),
         lambda f: np.mean(-np.log(_sig(f)))),
        ("lsgan", lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f**2),
         lambda f: 0.5 * np.mean((f - 1) ** 2)),
        ("hinge", lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)), lambda f: -np.mean(f)),
        ("wasserstein", lambda r, f: np.mean(f) - np.mean(r), lambda f: -np.mean(f)),
    ],
)
def test_logit_losses_match_their_formulas(name, d_expected, g_expected):
    real, fake = np.array([2.0, -1.0]), np.array([0.5, -3.0])
    loss = build_loss(LossConfig(name=name))
    d = loss.d_terms(torch.tensor(real), torch.tensor(fake)).item()
    g = loss.g_terms(torch.tensor(fake)).item()
    assert d == pytest.approx(d_expected(real, fake), rel=1e-9)
    assert g == pytest.approx(g_expected(fake), rel=1e-9)


def _sig(x):
    return 1 / (1 + np.exp(-x))


def test_wgan_d_step_leaves_every_weight_within_the_clip():
    cfg = config_lib.resolve("wgan-ring8", ["train.steps=1", "train.batch_size=32", "train.discriminator_steps=1"])
    run = build_run(cfg, None, torch.device("cpu"))
    before = torch.cat([p.detach().flatten() for p in run.D.parameters()])
    assert before.abs().max() > 0.01  # the default init is wider than the clip, so clipping acts
    training_loop(run, [])
    after = torch.cat([p.detach().flatten() for p in run.D.parameters()])
    assert after.abs().max() <= 0.01
    assert (after.abs() == 0.01).any()


@pytest.mark.parametrize("model, shape", [("dcgan", (1, 28, 28)), ("sngan", (3, 32, 32)), ("mlp", (2,))])
def test_spectral_norm_makes_the_largest_singular_value_one(model, shape):
    torch.manual_seed(0)
    cfg = ModelConfig(name=model, z_dim=8, width=8, depth=2, spectral_norm_G=True, spectral_norm_D=True)
    nets = build_nets(cfg, shape)
    layers = [m for net in (nets.G, nets.D) for m in net.modules() if hasattr(m, "parametrizations")]
    assert layers and all(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) for m in layers)
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward runs one power iteration per layer
            for m in layers:
                m.weight  # noqa: B018 - reading the parametrized weight runs the iteration
    for m in layers:
        with torch.no_grad():
            w = m.weight
        # torch's convention: the output dimension first (dim 1 for transposed convs).
        matrix = (w.transpose(0, 1) if isinstance(m, nn.ConvTranspose2d) else w).flatten(1)
        assert torch.linalg.svdvals(matrix)[0].item() == pytest.approx(1.0, abs=1e-2)


def test_spectral_norm_is_independent_per_network():
    nets = build_nets(ModelConfig(name="dcgan", z_dim=8, width=8, spectral_norm_D=True), (1, 28, 28))
    assert not any(hasattr(m, "parametrizations") for m in nets.G.modules())
    assert any(hasattr(m, "parametrizations") for m in nets.D.modules())


def test_truncated_normal_never_exceeds_its_threshold():
    prior = PRIORS.build("truncnormal", ModelConfig(z_dim=16, latent="truncnormal", truncation=0.7))
    z = prior.sample(20000, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert z.abs().max() <= 0.7
    # Closed-form variance of N(0, 1) truncated to [-a, a]: 1 - 2a phi(a) / (2 Phi(a) - 1).
    a = 0.7
    phi, Phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(a / math.sqrt(2)))
    assert z.var().item() == pytest.approx(1 - 2 * a * phi / (2 * Phi - 1), rel=0.02)
    u = PRIORS.build("uniform", ModelConfig(z_dim=16, latent="uniform")).sample(
        20000, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert u.min() >= -1 and u.max() <= 1 and u.var().item() == pytest.approx(1 / 3, rel=0.02)


def test_diffaugment_passes_gradients_to_g():
    torch.manual_seed(0)
    nets = build_nets(ModelConfig(name="dcgan", z_dim=8, width=8), (3, 32, 32))
    augment = build_augment(TrainConfig(augment="diffaugment"), (3, 32, 32))
    nets.D(augment(nets.G(torch.randn(4, 8)))).sum().backward()
    grads = [p.grad for p in nets.G.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)


def test_diffaugment_is_the_identity_with_every_policy_off():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    torch.manual_seed(0)
    assert torch.equal(DiffAugment([])(x), x)
    assert torch.equal(build_augment(TrainConfig(augment="diffaugment", augment_policy=[]), (3, 16, 16))(x), x)
    assert torch.equal(build_augment(TrainConfig(), (3, 16, 16))(x), x)


def test_each_diffaugment_policy_does_what_the_paper_says():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    # translation: every output pixel is an input pixel of the same image or the zero fill.
    t = translation(x)
    for i in range(4):
        values = set(x[i].flatten().tolist()) | {0.0}
        assert set(t[i].flatten().tolist()) <= values
    assert not torch.equal(t, x)
    # cutout: a square of half the side (8 x 8 = 64 px, less where it hangs over) is zeroed.
    c = cutout(x)
    zeroed = (c == 0).all(dim=1).flatten(1).sum(1)
    assert zeroed.max() == 64 and zeroed.min() >= 16 and torch.equal(c[c != 0], x[c != 0])
    # colour: brightness, saturation and contrast change every image, in the paper's ranges.
    assert (color(x) - x).abs().flatten(1).amax(1).min() > 0


def test_diffaugment_needs_images():
    with pytest.raises(GankitError, match="train.augment=none"):
        build_augment(TrainConfig(augment="diffaugment"), (2,))


def test_init_schemes():
    torch.manual_seed(0)
    for scheme, check in [
        ("dcgan", lambda w: abs(w.std().item() - 0.02) < 0.005),
        ("orthogonal", lambda w: torch.allclose(w.flatten(1) @ w.flatten(1).T, torch.eye(w.shape[0]), atol=1e-4)),
        ("kaiming", lambda w: abs(w.std().item() - math.sqrt(2 / (1 + 0.04) / w[0].numel())) < 0.2 * w.std().item()),
    ]:
        nets = build_nets(ModelConfig(name="mlp", z_dim=8, width=64, depth=2, init=scheme), (2,))
        weight = nets.D.net[3].weight.detach()  # the 64 x 64 hidden layer
        assert check(weight), scheme


def test_pacgan_packs_samples_and_needs_a_multiple_of_the_pack():
    torch.manual_seed(0)
    nets = build_nets(ModelConfig(name="pacgan", z_dim=4, width=16, depth=2, pack=3), (2,))
    x = torch.randn(6, 2)
    inner = nets.D.inner(torch.cat([x[0:3].flatten(), x[3:6].flatten()]).view(2, 6))
    assert torch.equal(nets.D(x), inner)  # consecutive samples share a pack
    with pytest.raises(GankitError, match="multiple of model.pack=3"):
        nets.D(torch.randn(4, 2))


@pytest.mark.parametrize("inner, kernel", [("dcgan", 4), ("dcgan-tf", 5)])
def test_pacgan_on_images_packs_channels_into_the_chosen_conv_nets(inner, kernel):
    nets = build_nets(ModelConfig(name="pacgan", z_dim=8, width=8, pack=2, pack_inner=inner), (3, 28, 28))
    first = next(m for m in nets.D.modules() if isinstance(m, torch.nn.Conv2d))
    assert (first.in_channels, first.kernel_size) == (6, (kernel, kernel))  # a pack of 2 RGB images
    assert nets.G(torch.randn(4, 8)).shape == (4, 3, 28, 28) and nets.D(torch.randn(4, 3, 28, 28)).shape == (2,)


def test_pixel_range_maps_what_d_sees_and_what_g_gives_and_nothing_else():
    """model.pixel_range=[0, 1] (DCGAN-tensorflow's pixels / 255): D sees reals in [0, 1] and G's raw
    tanh output unchanged; outside the nets G's samples are in [-1, 1] as everywhere in gankit.
    Parameter names and weights are those of the default build, and the EMA copy keeps the map."""
    import copy

    torch.manual_seed(0)
    plain = build_nets(ModelConfig(name="dcgan-tf", z_dim=8, width=8), (3, 28, 28))
    torch.manual_seed(0)
    unit = build_nets(ModelConfig(name="dcgan-tf", z_dim=8, width=8, pixel_range=[0.0, 1.0]), (3, 28, 28))
    assert plain.G.state_dict().keys() == unit.G.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(plain.D.state_dict().values(), unit.D.state_dict().values(),
                                                strict=True))
    seen = []
    unit.D.register_forward_pre_hook(lambda module, args: seen.append(args[0]))  # runs after the map
    real = torch.rand(4, 3, 28, 28) * 2 - 1
    unit.D(real)
    assert torch.allclose(seen[0], (real + 1) / 2)
    z = torch.randn(4, 8)
    raw = plain.G(z)  # the same weights without the map: G's tanh output, what the authors' D saw
    assert torch.allclose(unit.G(z), raw * 2 - 1, atol=1e-6)
    assert torch.allclose(copy.deepcopy(unit.G)(z), raw * 2 - 1, atol=1e-6)
    unit.D(unit.G(z))
    assert torch.allclose(seen[-1], raw, atol=1e-6)  # D sees G's tanh output as it came


@pytest.mark.parametrize("model, shape, classes", [("acgan", (1, 28, 28), 10), ("veegan", (2,), 0),
                                                   ("cyclegan", (3, 32, 32), 2)])
def test_pixel_range_refuses_nets_it_cannot_map_whole(model, shape, classes):
    with pytest.raises(GankitError, match="model.pixel_range works with noise-to-image models"):
        build_nets(ModelConfig(name=model, z_dim=4, width=8, depth=2, pixel_range=[0.0, 1.0]), shape, classes)


def test_sagan_attention_resolution_is_checked():
    with pytest.raises(GankitError, match="model.attention_resolution"):
        build_nets(ModelConfig(name="sagan", width=8, attention_resolution=64), (3, 64, 64))
    nets = build_nets(ModelConfig(name="sagan", width=8, attention_resolution=32), (3, 64, 64))
    assert sum(type(m).__name__ == "SelfAttention" for m in nets.G.modules()) == 1
    assert sum(type(m).__name__ == "SelfAttention" for m in nets.D.modules()) == 1


def test_submodules_share_their_side_of_the_training():
    """VEEGAN's reconstructor trains with G; ACGAN's classifier with D (same optimizer, EMA)."""
    veegan = build_nets(ModelConfig(name="veegan", z_dim=4, width=8, depth=2), (2,))
    assert any(n.startswith("reconstructor.") for n, _ in veegan.G.named_parameters())
    acgan = build_nets(ModelConfig(name="acgan", z_dim=4, width=8), (1, 28, 28), 10)
    assert any(n.startswith("classifier.") for n, _ in acgan.D.named_parameters())


@pytest.mark.parametrize("override, fragment", [
    ("model.init=xavier", "model.init"),
    ("train.augment_policy=[color,flip]", "train.augment_policy"),
    ("loss.clip=-1", "loss.clip"),
    ("model.pack=0", "model.pack"),
    ("model.pixel_range=[1, 0]", "model.pixel_range"),
    ("model.pixel_range=[0]", "model.pixel_range"),
])
def test_bad_zoo_settings_are_one_sentence(override, fragment):
    with pytest.raises(GankitError) as info:
        config_lib.resolve("gan-ring8", [override])
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unknown_penalty_suggests_the_closest():
    with pytest.raises(GankitError, match="did you mean 'gp'"):
        PENALTIES.build("gpp", LossConfig())


def test_truncation_trick_at_sampling_time(tmp_path):
    from gankit.checkpoint import save_checkpoint
    from gankit.sampling import generate

    cfg = config_lib.resolve("gan-ring8", ["train.steps=2", "train.batch_size=16"])
    run = build_run(cfg, tmp_path, torch.device("cpu"))
    training_loop(run, [])
    save_checkpoint(tmp_path / "checkpoints" / "latest.pt", run.checkpoint())
    plain, _ = generate(tmp_path, 200)
    tight, _ = generate(tmp_path, 200, truncation=1e-4)
    # With |z_i| <= 1e-4 every sample is G_ema(0), up to G's tiny slope near 0.
    with torch.no_grad():
        centre = run.G_ema(torch.zeros(1, cfg.model.z_dim))
    assert (tight - centre).abs().max() < 1e-2
    assert (plain - centre).abs().max() > 1e-2  # the run's own prior is not truncated
    with pytest.raises(GankitError, match="--truncation must be positive"):
        generate(tmp_path, 10, truncation=-1.0)


def test_seed_flags_map_onto_config_keys():
    cfg = config_lib.resolve("dcgan-mnist", ["model=dcgan", "batch_size=64", "lr=5e-5", "sng", "snd", "acml=2",
                                             "spd=2", "rtype=tnormal", "aug_policy=diff_aug", "cg=hinge",
                                             "cd=hinge"])
    assert (cfg.model.name, cfg.train.batch_size, cfg.train.lr_G, cfg.train.lr_D) == ("dcgan", 64, 5e-5, 5e-5)
    assert cfg.model.spectral_norm_G and cfg.model.spectral_norm_D
    assert (cfg.train.gradient_accumulation, cfg.train.discriminator_steps) == (2, 2)
    assert (cfg.model.latent, cfg.train.augment, cfg.loss.name) == ("truncnormal", "diffaugment", "hinge")
