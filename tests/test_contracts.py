"""Contract tests driven by the registries: every entry, the same promises."""

from __future__ import annotations

import pytest
import torch

from gankit.augment import build_augment, list_augments
from gankit.config import Config, DataConfig, LossConfig, ModelConfig, TrainConfig
from gankit.data import build_dataset, list_datasets
from gankit.errors import GankitError
from gankit.latent import PRIORS
from gankit.losses import Batch, build_loss, build_objective, list_losses
from gankit.nets import build_nets, is_conditional, is_translator, list_models
from gankit.penalties import PENALTIES, list_penalties

SHAPES = [(2,), (1, 28, 28), (3, 32, 32), (3, 64, 64)]


NUM_CLASSES = 10


def _nets_or_skip(name, shape, seed=0):
    """(nets, labels): conditional models get 10 classes and a label batch, others None."""
    for num_classes in (0, NUM_CLASSES):
        torch.manual_seed(seed)
        try:
            nets = build_nets(ModelConfig(name=name, z_dim=8, width=8, depth=2), shape, num_classes)
            labels = torch.tensor([0, 3, 7, 9]) if num_classes else None
            return nets, labels
        except GankitError as exc:
            if num_classes == 0 and "conditional" in str(exc):
                continue
            pytest.skip(f"{name} does not support {shape}: {exc}")


def g_inputs(nets, shape, n=4, seed=None):
    """What G takes: noise (B, 8), or images of the data shape for an image-to-image G (CycleGAN)."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if getattr(nets.G, "translates", False):
        return torch.rand(n, *shape, generator=generator) * 2 - 1
    return torch.randn(n, 8, generator=generator)


def d_outputs(nets, x, labels, z):
    """D's real/fake logits under the contract in gankit.nets, plus a scalar touching every head."""
    if getattr(nets.D, "needs_z", False):  # VEEGAN: D scores (x, z); G reconstructs z from x
        logits = nets.D(x, labels, nets.G.reconstruct(x))
        return logits, logits.sum()
    if hasattr(nets.D, "logits_and_classes"):  # ACGAN: a class head next to the real/fake head
        logits, classes = nets.D.logits_and_classes(x)
        assert classes.shape == (x.shape[0], NUM_CLASSES)
        assert torch.equal(logits, nets.D(x, labels))
        return logits, logits.sum() + classes.sum()
    logits = nets.D(x, labels)
    return logits, logits.sum()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list_models())
def test_model_contract(name, shape):
    nets, labels = _nets_or_skip(name, shape)
    z = g_inputs(nets, shape)
    fake = nets.G(z, labels)
    assert fake.shape == (4, *shape)
    assert torch.isfinite(fake).all()
    if len(shape) == 3:  # images are in G's Tanh range (a linear-output G clamps in eval mode)
        drawn = nets.G.eval()(z, labels).detach() if getattr(nets.G, "linear_output", False) else fake
        nets.G.train()
        assert drawn.min() >= -1 and drawn.max() <= 1
    logits, total = d_outputs(nets, fake, labels, z)
    pack = getattr(nets.D, "m", 1)  # PacGAN: one logit per pack of m samples
    assert logits.shape == (4 // pack,)
    assert torch.isfinite(logits).all()
    total.backward()
    for net in (nets.G, nets.D):
        # A growing net (PGGAN) leaves the toRGB/fromRGB layers of past resolutions out of the graph.
        params = net.active_parameters() if hasattr(net, "active_parameters") else net.parameters()
        grads = [p.grad for p in params if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list_models())
def test_model_is_deterministic_under_a_seed(name, shape):
    (a, labels), (b, _) = _nets_or_skip(name, shape, seed=3), _nets_or_skip(name, shape, seed=3)
    for pa, pb in zip(a.G.state_dict().values(), b.G.state_dict().values(), strict=True):
        assert torch.equal(pa, pb) if isinstance(pa, torch.Tensor) else pa == pb  # extra state: PGGAN's phase
    z = g_inputs(a, shape, seed=1)
    a.G.eval()
    b.G.eval()
    assert torch.equal(a.G(z, labels), b.G(z, labels))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list_models())
def test_conditional_models_use_the_label(name, shape):
    nets, labels = _nets_or_skip(name, shape)
    if labels is None or getattr(nets.G, "translates", False):
        pytest.skip(f"{name} is unconditional, or its labels are domains (checked in test_cyclegan)")
    nets.G.eval()
    nets.D.eval()
    z = torch.randn(4, 8).repeat(2, 1)  # the same noise under two different label batches
    y = torch.cat([labels, (labels + 1) % NUM_CLASSES])
    with torch.no_grad():
        fake = nets.G(z, y)
        assert (fake[:4] - fake[4:]).abs().flatten(1).amax(1).min() > 1e-6  # every sample changes
        if name != "acgan":  # ACGAN's D does not see the label; its class head is checked above
            x = fake[:4].repeat(2, 1, 1, 1) if len(shape) == 3 else fake[:4].repeat(2, 1)
            logits = nets.D(x, y)
            assert (logits[:4] - logits[4:]).abs().min() > 1e-6


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list_models())
def test_a_model_is_marked_conditional_exactly_when_its_G_reads_the_label(name, shape):
    """Grids label rows with classes, and `gankit sample --class` draws one, for marked models only."""
    if is_translator(name):
        pytest.skip(f"{name}'s labels are domains (checked in test_cyclegan)")
    torch.manual_seed(0)
    try:
        G = build_nets(ModelConfig(name=name, z_dim=8, width=8, depth=2), shape, NUM_CLASSES).G.eval()
    except GankitError as exc:
        pytest.skip(f"{name} does not support {shape}: {exc}")
    z = torch.randn(4, 8)
    with torch.no_grad():
        reads_label = not torch.equal(G(z, torch.tensor([0, 3, 7, 9])), G(z, torch.tensor([1, 4, 8, 0])))
    assert reads_label == is_conditional(name)
    objective = build_objective(Config(data=DataConfig(name="mnist5k"), model=ModelConfig(name=name),
                                       loss=LossConfig(name="acgan" if name == "acgan" else "nonsaturating")),
                                shape, NUM_CLASSES)
    assert ("labels" in objective.preview_inputs(None, 8, 0, torch.device("cpu"))) == reads_label


# Losses that need more than logits name the model they need: (model, data shape, classes).
LOSS_MODELS = {"acgan": ("acgan", (1, 28, 28), NUM_CLASSES), "veegan": ("veegan", (2,), 0),
               "cyclegan": ("cyclegan", (1, 24, 24), 2)}


@pytest.mark.parametrize("name", list_losses())
def test_loss_contract(name):
    """Every objective makes its batch from a real one, then returns finite D and G terms, and G's
    terms reach every G weight through the batch's fakes."""
    model, shape, num_classes = LOSS_MODELS.get(name, ("mlp", (2,), 0))
    cfg = Config(model=ModelConfig(name=model, z_dim=4, width=16, depth=2), loss=LossConfig(name=name))
    objective = build_objective(cfg, shape, num_classes)
    torch.manual_seed(0)
    nets = build_nets(cfg.model, shape, num_classes)
    real = torch.rand(8, *shape) * 2 - 1
    labels = torch.arange(8) % num_classes if num_classes else None
    batch = objective.make_batch(nets, real, labels, torch.Generator().manual_seed(0))
    assert batch.fake.shape == real.shape
    d_terms = objective.discriminator(nets, batch.detached())
    g_terms = objective.generator(nets, batch)
    for terms, prefix in ((d_terms, "D/"), (g_terms, "G/")):
        assert terms and all(k.startswith(prefix) for k in terms)
        total = sum(terms.values())
        assert total.dim() == 0 and torch.isfinite(total)
    sum(g_terms.values()).backward()
    assert all(p.grad is not None for p in nets.G.parameters())


@pytest.mark.parametrize("name", list_losses())
def test_loss_refuses_a_model_it_cannot_use(name):
    """A loss that needs a special D says so in one sentence instead of failing deep inside."""
    if name not in LOSS_MODELS:
        pytest.skip("works with any model")
    loss = build_loss(LossConfig(name=name))
    nets = build_nets(ModelConfig(name="dcgan", z_dim=4, width=8), (1, 28, 28))
    x, z = torch.zeros(4, 1, 28, 28), torch.zeros(4, 4)
    with pytest.raises(GankitError, match=f"model.name={name}"):
        loss.discriminator(nets, Batch(real=x, fake=x, z=z, labels=torch.zeros(4, dtype=torch.long)))


@pytest.mark.parametrize("name", list_penalties())
def test_penalty_contract(name):
    penalty = PENALTIES.build(name, LossConfig(penalties=[name]))
    assert penalty.weight > 0 and penalty.every >= 1
    torch.manual_seed(0)
    nets = build_nets(ModelConfig(name="mlp", z_dim=4, width=16, depth=2), (2,))
    batch = Batch(real=torch.randn(8, 2), fake=nets.G(torch.randn(8, 4)).detach(), z=torch.randn(8, 4), labels=None)
    terms = penalty(nets, batch, step=0)
    assert list(terms) == [f"D/{name}"]
    assert terms[f"D/{name}"].dim() == 0 and torch.isfinite(terms[f"D/{name}"])
    terms[f"D/{name}"].backward()  # the penalty trains D: its gradient reaches D's weights
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in nets.D.parameters())
    if penalty.every > 1:
        assert penalty(nets, batch, step=1) == {}


@pytest.mark.parametrize("name", list_augments())
def test_augment_contract(name):
    cfg = TrainConfig(augment=name)
    augment = build_augment(cfg, (3, 16, 16))
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    torch.manual_seed(0)
    a = augment(x)
    torch.manual_seed(0)
    assert torch.equal(augment(x), a)  # reproducible from the (checkpointed) global RNG
    assert a.shape == x.shape and torch.isfinite(a).all()
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(PRIORS.list()))
def test_prior_contract(name):
    prior = PRIORS.build(name, ModelConfig(z_dim=5, latent=name))
    a = prior.sample(6, torch.Generator().manual_seed(0), torch.device("cpu"))
    b = prior.sample(6, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert a.shape == (6, 5) and torch.equal(a, b)


# The others need files on disk: tests/test_datasets.py runs this contract on every dataset, on fake files.
OFFLINE = [n for n in list_datasets() if n in ("grid25", "mnist5k", "ring8")]


@pytest.mark.parametrize("name", OFFLINE)
def test_dataset_contract(name):
    ds = build_dataset(DataConfig(name=name))
    loader = ds.loader(16, seed=0, device=torch.device("cpu"))
    x, y = loader.next()
    assert x.shape == (16, *ds.shape)
    assert torch.isfinite(x).all()
    if len(ds.shape) == 3:
        assert x.min() >= -1 and x.max() <= 1
    if ds.num_classes:
        assert y.shape == (16,) and 0 <= y.min() and y.max() < ds.num_classes
    # The loader's state resumes the exact batch stream.
    state = loader.state_dict()
    expected = loader.next()[0]
    other = ds.loader(16, seed=123, device=torch.device("cpu"))
    other.load_state_dict(state)
    assert torch.equal(other.next()[0], expected)
