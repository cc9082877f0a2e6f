"""Contract tests driven by the registries: every entry, the same promises."""

from __future__ import annotations

import pytest
import torch

from gankit.config import DataConfig, LossConfig, ModelConfig
from gankit.data import build_dataset, list_datasets
from gankit.errors import GankitError
from gankit.latent import PRIORS
from gankit.losses import Batch, build_loss, list_losses
from gankit.nets import build_nets, list_models

SHAPES = [(2,), (1, 28, 28), (3, 32, 32), (3, 64, 64)]


def _nets_or_skip(name, shape, seed=0):
    torch.manual_seed(seed)
    try:
        return build_nets(ModelConfig(name=name, z_dim=8, width=8, depth=2), shape)
    except GankitError as exc:
        pytest.skip(f"{name} does not support {shape}: {exc}")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list_models())
def test_model_contract(name, shape):
    nets = _nets_or_skip(name, shape)
    z = torch.randn(4, 8)
    fake = nets.G(z)
    assert fake.shape == (4, *shape)
    assert torch.isfinite(fake).all()
    if len(shape) == 3:  # images are in G's Tanh range
        assert fake.min() >= -1 and fake.max() <= 1
    logits = nets.D(fake)
    assert logits.shape == (4,)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    for net in (nets.G, nets.D):
        grads = [p.grad for p in net.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list_models())
def test_model_is_deterministic_under_a_seed(name, shape):
    a, b = _nets_or_skip(name, shape, seed=3), _nets_or_skip(name, shape, seed=3)
    for pa, pb in zip(a.G.state_dict().values(), b.G.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    a.G.eval()
    b.G.eval()
    assert torch.equal(a.G(z), b.G(z))


@pytest.mark.parametrize("name", list_losses())
def test_loss_contract(name):
    loss = build_loss(LossConfig(name=name))
    torch.manual_seed(0)
    nets = build_nets(ModelConfig(name="mlp", z_dim=4, width=16, depth=2), (2,))
    real, z = torch.randn(8, 2), torch.randn(8, 4)
    fake = nets.G(z)
    d_terms = loss.discriminator(nets, Batch(real=real, fake=fake.detach(), z=z, labels=None))
    g_terms = loss.generator(nets, Batch(real=real, fake=fake, z=z, labels=None))
    for terms, prefix in ((d_terms, "D/"), (g_terms, "G/")):
        assert terms and all(k.startswith(prefix) for k in terms)
        total = sum(terms.values())
        assert total.dim() == 0 and torch.isfinite(total)
    sum(g_terms.values()).backward()
    assert all(p.grad is not None for p in nets.G.parameters())


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
