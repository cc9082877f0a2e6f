from __future__ import annotations

import pytest
import torch

from gankit.config import DataConfig
from gankit.data import build_dataset
from gankit.data.mixtures import grid_means
from gankit.errors import GankitError

from fakedata import write_fake_mnist


def test_ring8_matches_its_definition():
    ds = build_dataset(DataConfig(name="ring8"))
    assert ds.means.shape == (8, 2) and ds.std == 0.01
    assert torch.allclose(ds.means.norm(dim=1), torch.ones(8))
    points, modes = ds.sample(8000, torch.Generator().manual_seed(0))
    residual = points - ds.means[modes]
    assert abs(residual.std().item() - 0.01) < 1e-3
    assert torch.bincount(modes, minlength=8).min() > 800  # modes are drawn uniformly


def test_grid25_matches_its_definition_and_is_configurable():
    ds = build_dataset(DataConfig(name="grid25"))
    assert ds.std == 0.05
    assert sorted(set(ds.means[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert len(ds.means) == 25
    assert torch.equal(grid_means(3, 1.0)[:, 0].unique(), torch.tensor([-1.0, 0.0, 1.0]))
    ring = build_dataset(DataConfig(name="ring8", num_modes=5, radius=2.0, std=0.1))
    assert ring.means.shape == (5, 2) and ring.std == 0.1
    assert torch.allclose(ring.means.norm(dim=1), torch.full((5,), 2.0))


def test_mnist_reads_real_idx_files(tmp_path):
    arrays = write_fake_mnist(tmp_path)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = build_dataset(DataConfig(name="mnist", root=str(tmp_path), split=split))
        images, labels = arrays[prefix]
        assert ds.images.shape == (len(images), 1, 28, 28) and ds.images.dtype == torch.uint8
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
        assert torch.equal(ds.labels, torch.from_numpy(labels).long())
        assert ds.num_classes == 10


def test_mnist_resizes_and_converts_channels(tmp_path):
    write_fake_mnist(tmp_path)
    ds = build_dataset(DataConfig(name="mnist", root=str(tmp_path), resolution=32, channels=3))
    assert ds.shape == (3, 32, 32)


def test_missing_mnist_says_what_to_put_where(tmp_path):
    with pytest.raises(GankitError) as info:
        build_dataset(DataConfig(name="mnist", root=str(tmp_path / "nowhere")))
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and str(tmp_path / "nowhere") in message
    assert "data.download=true" in message


def test_mnist5k_is_real_and_balanced():
    train = build_dataset(DataConfig(name="mnist5k"))
    test = build_dataset(DataConfig(name="mnist5k", split="test"))
    assert len(train) == 4500 and len(test) == 500
    assert torch.bincount(train.labels).tolist() == [450] * 10
    # Real digits: mostly black background with bright strokes, unlike noise.
    mean = train.images.float().mean().item()
    assert 20 < mean < 50
    assert (train.images == 0).float().mean() > 0.7
