"""Every dataset on fake files written here in its real on-disk format: no download, ever.

In the manner of torchvision's test/datasets_utils.py: IDX files for (Fashion-)MNIST, pickled
batches for CIFAR-10, the CelebA folder with its partition and attribute files, a messy nested
image folder and unpaired A/B folders (tests/fakedata.py writes them).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit import config as config_lib
from gankit.checkpoint import load_checkpoint
from gankit.config import DataConfig
from gankit.data import build_dataset, list_datasets
from gankit.data.base import ImageTensors
from gankit.data.images import DataWarning
from gankit.data.stream import StreamedImages
from gankit.data.unpaired import split_domains
from gankit.errors import GankitError
from gankit.training.loop import train

from fakedata import (
    CELEBA_ATTRIBUTES,
    write_fake_celeba,
    write_fake_cifar10,
    write_fake_fashion_mnist,
    write_fake_mnist,
    write_image_folder,
    write_messy_folder,
    write_unpaired,
)

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def cifar_md5_accepts_fakes(monkeypatch):
    # torchvision checks each CIFAR file's MD5 against the published one; its own tests patch
    # that check for fake files, and so do these. Its parsing code runs unchanged.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return {
        "root": root,
        "mnist": write_fake_mnist(root),
        "fashion": write_fake_fashion_mnist(root),
        "cifar": write_fake_cifar10(root),
        "celeba": write_fake_celeba(root),
        "messy": write_messy_folder(root / "messy"),
        "unpaired": write_unpaired(root / "unpaired"),
    }


def fake_config(name: str, root: Path, **overrides) -> DataConfig:
    """A config that reads `name` from the fake files under root (num_workers=0: no process start-up)."""
    common = {"root": str(root), "num_workers": 0}
    configs = {
        "ring8": {}, "grid25": {}, "mnist5k": {}, "digits": {}, "digits2mnist": {},  # shipped in packages
        "mnist": common, "fashion-mnist": common,
        "cifar10": {**common, "resolution": 32, "channels": 3},
        "celeba": {**common, "resolution": 32, "channels": 3},
        "imagefolder": {**common, "path": str(root / "messy"), "resolution": 32, "channels": 3},
        "unpaired": {**common, "path": str(root / "unpaired"), "resolution": 32, "channels": 3},
        "stacked-mnist": {**common, "stacked_source": "mnist"},
    }
    assert name in configs, f"dataset '{name}' has no fake data in tests/test_datasets.py; add it"
    return DataConfig(name=name, **{**configs[name], **overrides})


def quiet_build(cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return build_dataset(cfg)


def cache_files(root: Path) -> list[Path]:
    return sorted((Path(root) / "cache").glob("*.h5"))


# --- The contract every dataset keeps -----------------------------------------------------------


@pytest.mark.parametrize("name", list_datasets())
def test_dataset_contract_on_fake_files(name, fake):
    ds = quiet_build(fake_config(name, fake["root"]))
    loader = ds.loader(8, seed=0, device=CPU)
    x, y = loader.next()
    assert x.shape == (8, *ds.shape) and x.dtype == torch.float32
    if len(ds.shape) == 3:
        assert x.min() >= -1 and x.max() <= 1
    if ds.num_classes:
        assert y.shape == (8,) and 0 <= y.min() and y.max() < ds.num_classes
    state = loader.state_dict()
    expected = [loader.next() for _ in range(3)]  # crosses an epoch end on the small fakes
    other = ds.loader(8, seed=99, device=CPU)
    other.load_state_dict(state)
    for want in expected:
        got = other.next()
        assert torch.equal(got[0], want[0])
        assert (got[1] is None and want[1] is None) or torch.equal(got[1], want[1])


# --- MNIST and Fashion-MNIST: gzipped IDX -------------------------------------------------------


@pytest.mark.parametrize("name, key, folder", [("mnist", "mnist", "MNIST"),
                                               ("fashion-mnist", "fashion", "FashionMNIST")])
def test_idx_datasets_read_every_split_exactly(fake, name, key, folder):
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = build_dataset(fake_config(name, fake["root"], split=split))
        images, labels = fake[key][prefix]
        assert isinstance(ds, ImageTensors) and len(ds) == len(images) and ds.shape == (1, 28, 28)
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images))  # uint8, untouched at 28 px
        assert torch.equal(ds.labels, torch.from_numpy(labels).long()) and ds.num_classes == 10


def test_missing_fashion_mnist_names_files_and_directory(tmp_path):
    with pytest.raises(GankitError) as info:
        build_dataset(fake_config("fashion-mnist", tmp_path))
    message = str(info.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "data.download=true" in message and message.count(". ") == 0


# --- CIFAR-10: pickled python batches -----------------------------------------------------------


def test_cifar10_reads_the_pickled_batches(fake):
    for split in ("train", "test"):
        ds = build_dataset(fake_config("cifar10", fake["root"], split=split))
        images, labels = fake["cifar"][split]
        assert len(ds) == len(images) == (60 if split == "train" else 10) and ds.shape == (3, 32, 32)
        assert torch.equal(ds.images, torch.from_numpy(images).permute(0, 3, 1, 2))
        assert ds.labels.tolist() == labels.tolist() and ds.num_classes == 10
    grey = build_dataset(fake_config("cifar10", fake["root"], channels=1, resolution=64))
    assert grey.shape == (1, 64, 64)
    luma = (torch.from_numpy(fake["cifar"]["train"][0]).double() @ torch.tensor([0.299, 0.587, 0.114],
                                                                                dtype=torch.float64))
    grey32 = build_dataset(fake_config("cifar10", fake["root"], channels=1))
    assert (grey32.images[:, 0].double() - luma).abs().max() <= 0.5 + 1e-6  # ITU-R 601, rounded


def test_cifar10_from_the_published_tarball(fake, tmp_path):
    import tarfile

    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(fake["root"] / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    ds = build_dataset(fake_config("cifar10", tmp_path, split="test"))
    assert len(ds) == 10 and (tmp_path / "cifar-10-batches-py" / "test_batch").is_file()


def test_missing_cifar10_names_files_and_directory(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real MD5 check: nothing there to pass it
    with pytest.raises(GankitError) as info:
        build_dataset(fake_config("cifar10", tmp_path))
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message and "data_batch_1" in message
    assert "batches.meta" in message and "data.download=true" in message


# --- CelebA: aligned JPEGs, partition and attribute files ---------------------------------------


def test_celeba_splits_crop_and_attribute_labels(fake):
    table = fake["celeba"]
    for split, digit in (("train", "0"), ("test", "2")):
        ds = quiet_build(fake_config("celeba", fake["root"], split=split, attributes=["Male", "Smiling"]))
        names = sorted(k for k, (p, _) in table.items() if p == digit)
        assert len(ds) == len(names) and ds.shape == (3, 32, 32) and ds.num_classes == 4
        expected = [(table[n][1]["Male"] == 1) + 2 * (table[n][1]["Smiling"] == 1) for n in names]
        assert ds.labels.tolist() == expected
        # The default 108 px centred crop is exactly the blue square: no red survives (inside the
        # outermost pixel ring, where JPEG ringing at the square's edge lands).
        red, blue = ds.images[:, 0, 1:-1, 1:-1].float(), ds.images[:, 2, 1:-1, 1:-1].float()
        assert red.max() < 40 and blue.min() > 200
    wider = quiet_build(fake_config("celeba", fake["root"], center_crop=160))
    assert wider.images[:, 0, 0, 0].float().min() > 200  # a wider crop takes in the red border


def test_celeba_errors(fake, tmp_path):
    with pytest.raises(GankitError, match="list_eval_partition.txt"):
        build_dataset(fake_config("celeba", tmp_path))
    with pytest.raises(GankitError, match="no attribute Smilling; choose from .*Smiling"):
        quiet_build(fake_config("celeba", fake["root"], attributes=["Smilling"]))


def test_celeba_from_kaggles_copy(tmp_path):
    # Kaggle ships img_align_celeba/img_align_celeba/ and .csv lists with a header line.
    import shutil

    table = write_fake_celeba(tmp_path, n=8)
    folder = tmp_path / "celeba"
    shutil.move(folder / "img_align_celeba", tmp_path / "inner")
    (folder / "img_align_celeba").mkdir()
    shutil.move(tmp_path / "inner", folder / "img_align_celeba" / "img_align_celeba")
    (folder / "list_eval_partition.txt").unlink()
    (folder / "list_attr_celeba.txt").unlink()
    (folder / "list_eval_partition.csv").write_text(
        "image_id,partition\n" + "".join(f"{k},{p}\n" for k, (p, _) in table.items()))
    (folder / "list_attr_celeba.csv").write_text("image_id," + ",".join(CELEBA_ATTRIBUTES) + "\n" + "".join(
        f"{k}," + ",".join(str(v[a]) for a in CELEBA_ATTRIBUTES) + "\n" for k, (_, v) in table.items()))
    ds = build_dataset(fake_config("celeba", tmp_path, attributes=["Young"]))
    names = sorted(k for k, (p, _) in table.items() if p == "0")
    assert len(ds) == len(names) == 4
    assert ds.labels.tolist() == [int(table[n][1]["Young"] == 1) for n in names]


def test_celeba_subset_warns_about_absent_images(tmp_path):
    write_fake_celeba(tmp_path, n=8)
    (tmp_path / "celeba" / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.warns(DataWarning, match="1 of the 4 train images"):
        ds = build_dataset(fake_config("celeba", tmp_path))
    assert len(ds) == 3


# --- Image folders: the mess real folders hold --------------------------------------------------


def test_messy_folder_is_read_converted_and_reported_once(fake):
    info = fake["messy"]
    cfg = fake_config("imagefolder", fake["root"], class_labels=True, resolution=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_dataset(cfg)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    skipped = [m for m in messages if "unreadable" in m]
    upscaled = [m for m in messages if "upscaled" in m]
    assert len(skipped) == 1 and "skipped 2 " in skipped[0]
    assert "corrupted.png" in skipped[0] and "truncated.jpg" in skipped[0]
    assert len(upscaled) == 1 and "upscaled 1 " in upscaled[0] and "tiny.png" in upscaled[0]
    assert len(ds) == info["readable"] and ds.shape == (3, 32, 32)  # notes.txt ignored
    assert ds.classes == ["cats", "dogs"] and ds.num_classes == 2
    assert torch.bincount(ds.labels).tolist() == [info["cats"], info["dogs"]]
    from gankit.data.cache import read_sources

    names = read_sources(_cache_for(fake["root"], "imagefolder-all-32px-3ch"))
    pixel = {n: ds.images[names.index(n)] for n in (info["rgba"], info["grey16"], info["palette"], info["tiny"])}
    assert pixel[info["rgba"]][:, 16, 2].tolist() == [255, 255, 255]  # transparent -> white
    assert pixel[info["rgba"]][:, 16, 29].tolist() == [0, 255, 0]
    assert pixel[info["grey16"]][:, 5, 5].tolist() == [128, 128, 128]  # 32768/65535, not clipped to 255
    assert pixel[info["palette"]][:, 5, 5].tolist() == [0, 0, 255]
    assert pixel[info["tiny"]].unique().tolist() == [128]


def _cache_for(root: Path, prefix: str) -> Path:
    (path,) = [p for p in cache_files(root) if p.name.startswith(prefix)]
    return path


def test_greyscale_channel_and_unlabelled_folder(fake):
    ds = quiet_build(fake_config("imagefolder", fake["root"], channels=1, resolution=16))
    assert ds.shape == (1, 16, 16) and ds.labels is None and ds.num_classes == 0


def test_empty_and_unreadable_folders_say_so(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="has no image files"):
        build_dataset(fake_config("imagefolder", tmp_path, path=str(tmp_path / "empty")))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    (broken / "b.txt").write_text("hello")
    with pytest.raises(GankitError, match="none of the 1 image files"):
        build_dataset(fake_config("imagefolder", tmp_path, path=str(broken)))
    assert cache_files(tmp_path) == []  # no half-written cache left behind
    with pytest.raises(GankitError, match="data.path"):
        build_dataset(fake_config("imagefolder", tmp_path, path=""))
    write_image_folder(tmp_path / "loose", 3)
    with pytest.raises(GankitError, match="outside any class subfolder"):
        build_dataset(fake_config("imagefolder", tmp_path, path=str(tmp_path / "loose"), class_labels=True))


# --- The HDF5 cache -----------------------------------------------------------------------------


def test_cache_is_written_once_reused_and_rebuilt_when_stale_or_corrupted(tmp_path, capfd):
    folder = tmp_path / "imgs"
    write_image_folder(folder, 10)
    cfg = fake_config("imagefolder", tmp_path, path=str(folder))
    first = build_dataset(cfg)
    (path,) = cache_files(tmp_path)
    assert "building HDF5 cache" in capfd.readouterr().err
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    second = build_dataset(cfg)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp  # read, not rewritten
    assert "building" not in capfd.readouterr().err and torch.equal(first.images, second.images)
    # Another resolution is another cache beside the first.
    build_dataset(fake_config("imagefolder", tmp_path, path=str(folder), resolution=16))
    assert len(cache_files(tmp_path)) == 2

    # A changed source file makes the cache stale: rebuilt, with a warning, with the new pixels.
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / "0003.png")
    with pytest.warns(DataWarning, match="stale"):
        third = build_dataset(cfg)
    assert third.images[3].max() == 0 and torch.equal(third.images[4], first.images[4])
    # A damaged cache file is detected and rebuilt the same way.
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.warns(DataWarning, match="corrupted"):
        fourth = build_dataset(cfg)
    assert torch.equal(fourth.images, third.images)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


SOURCE_TO_TOUCH = {
    "mnist": "MNIST/raw/train-images-idx3-ubyte", "fashion-mnist": "FashionMNIST/raw/train-labels-idx1-ubyte",
    "cifar10": "cifar-10-batches-py/data_batch_3", "celeba": "celeba/img_align_celeba/000001.jpg",
    "imagefolder": "messy/cats/good_0.jpg", "unpaired": "unpaired/trainB/0001.png",
    "stacked-mnist": "MNIST/raw/train-labels-idx1-ubyte",
}


@pytest.mark.parametrize("name", list(SOURCE_TO_TOUCH))
def test_each_cache_is_written_once_reused_and_rebuilt_after_a_source_change(fake, tmp_path, name):
    import shutil

    shutil.copytree(fake["root"], tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("cache"))
    cfg = fake_config(name, tmp_path)
    first = quiet_build(cfg)
    caches = cache_files(tmp_path)
    assert caches, f"{name} wrote no HDF5 cache"
    stamps = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in caches]
    quiet_build(cfg)
    assert cache_files(tmp_path) == caches
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in caches] == stamps  # read, not rewritten
    source = tmp_path / SOURCE_TO_TOUCH[name]
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    with pytest.warns(DataWarning, match="stale"):
        second = build_dataset(cfg)
    assert any(p.stat().st_ino != ino for p, (ino, _) in zip(caches, stamps, strict=True))  # rewritten
    assert len(second) == len(first)


def test_idx_cache_follows_its_source_files(tmp_path):
    write_fake_mnist(tmp_path, seed=0)
    cfg = fake_config("mnist", tmp_path)
    before = build_dataset(cfg).images.clone()
    for f in (tmp_path / "MNIST" / "raw").iterdir():
        f.unlink()
    arrays = write_fake_mnist(tmp_path, seed=5)
    with pytest.warns(DataWarning, match="stale"):
        after = build_dataset(cfg)
    assert not torch.equal(before, after.images)
    assert torch.equal(after.images[:, 0], torch.from_numpy(arrays["train"][0]))


# --- Larger than the memory budget: streamed, and resumable -------------------------------------


def test_over_budget_streams_the_same_images(tmp_path):
    folder = tmp_path / "imgs"
    write_image_folder(folder, 20)
    in_memory = build_dataset(fake_config("imagefolder", tmp_path, path=str(folder)))
    streamed = build_dataset(fake_config("imagefolder", tmp_path, path=str(folder), in_memory_budget_mb=0,
                                         num_workers=1))
    assert isinstance(streamed, StreamedImages) and len(streamed) == 20 and streamed.shape == (3, 32, 32)
    assert torch.equal(streamed.read([7, 2, 19]), in_memory.images[[7, 2, 19]])
    loader = streamed.loader(6, seed=1, device=CPU)
    seen = [loader.next()[0] for _ in range(3)]  # one epoch: 3 batches of 6 from 20 images
    rows = [((b + 1) * 127.5).round().to(torch.uint8) for b in seen]
    flat = torch.cat(rows)
    matches = [(in_memory.images == row).flatten(1).all(1).nonzero().flatten().tolist() for row in flat]
    assert all(len(m) == 1 for m in matches) and len({m[0] for m in matches}) == 18  # no repeats in an epoch
    state = loader.state_dict()
    want = [loader.next()[0] for _ in range(4)]
    again = streamed.loader(6, seed=1, device=CPU)
    again.load_state_dict(state)
    assert all(torch.equal(again.next()[0], w) for w in want)


# --- Unpaired A/B folders -----------------------------------------------------------------------


def test_unpaired_batches_are_half_a_half_b(fake):
    ds = quiet_build(fake_config("unpaired", fake["root"]))
    assert len(ds.a) == 10 and len(ds.b) == 7 and ds.num_classes == 2 and ds.shape == (3, 32, 32)
    x, y = ds.loader(6, seed=0, device=CPU).next()
    real_a, real_b = split_domains(x)
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    as_uint8 = lambda t: ((t + 1) * 127.5).round().to(torch.uint8)  # noqa: E731
    for images, domain in ((real_a, ds.a), (real_b, ds.b)):
        for row in as_uint8(images):
            assert (domain.images == row).flatten(1).all(1).any()
    test = quiet_build(fake_config("unpaired", fake["root"], split="test"))
    assert len(test.a) == len(test.b) == 4
    with pytest.raises(GankitError, match="must be even"):
        ds.loader(5, seed=0, device=CPU)
    with pytest.raises(GankitError, match="trainA"):
        build_dataset(fake_config("unpaired", fake["root"], path=str(fake["root"] / "messy")))


# --- Stacked MNIST ------------------------------------------------------------------------------


@pytest.mark.parametrize("stacked_size", [0, 50])
def test_stacked_mnist_labels_are_the_stacked_digits(fake, stacked_size):
    images, labels = fake["mnist"]["train"]
    digits = torch.from_numpy(images)  # (N, 28, 28), random noise: each one is unique
    ds = build_dataset(fake_config("stacked-mnist", fake["root"], stacked_size=stacked_size))
    assert ds.shape == (3, 28, 28) and ds.num_classes == 1000
    if stacked_size:
        assert len(ds) == 50
    x, y = ds.loader(16, seed=0, device=CPU).next()
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    for image, label in zip(x, y.tolist(), strict=True):
        found = []
        for channel in image:  # which source digit is in each of R, G, B?
            (index,) = (digits == channel).flatten(1).all(1).nonzero().flatten().tolist()
            found.append(int(labels[index]))
        assert label == 100 * found[0] + 10 * found[1] + found[2]


def test_stacked_mnist_fixed_set_does_not_depend_on_train_seed(fake):
    a = build_dataset(fake_config("stacked-mnist", fake["root"], stacked_size=20))
    b = build_dataset(fake_config("stacked-mnist", fake["root"], stacked_size=20))
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


# --- Every dataset trains -----------------------------------------------------------------------


TINY_TRAIN = ["train.steps=2", "train.batch_size=8", "train.log_every=1", "train.sample_every=100",
              "train.checkpoint_every=100", "train.grid_samples=4", "model.width=8", "model.z_dim=8"]


@pytest.mark.parametrize("name", [n for n in list_datasets() if n not in ("ring8", "grid25", "mnist5k")])
def test_every_dataset_trains_two_dcgan_steps(fake, tmp_path, name):
    # The real loop on the real data, without the file-writing hooks (test_cli.py and
    # test_resume.py cover those; ring8, grid25 and mnist5k train there through their presets).
    from gankit.training.loop import build_run, training_loop

    cfg = config_lib.resolve("dcgan-mnist", TINY_TRAIN)
    cfg.data = fake_config(name, fake["root"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        run = build_run(cfg, tmp_path, CPU)
    before = [p.clone() for p in run.G.parameters()]
    training_loop(run, hooks=[])
    assert run.step == 2 and run.images_seen == 16
    after = list(run.G.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_resume_on_a_streamed_dataset_is_bit_identical(tmp_path):
    from gankit.training.loop import resume
    from test_resume import _assert_identical

    write_image_folder(tmp_path / "imgs", 24)
    common = TINY_TRAIN[1:] + ["train.checkpoint_every=2", "data.name=imagefolder", f"data.path={tmp_path / 'imgs'}",
                               f"data.root={tmp_path}", "data.resolution=32", "data.channels=3",
                               "data.in_memory_budget_mb=0", "data.num_workers=1"]
    train(config_lib.resolve("dcgan-mnist", common + ["train.steps=4"]), tmp_path / "straight")
    train(config_lib.resolve("dcgan-mnist", common + ["train.steps=2"]), tmp_path / "stopped")
    resume(tmp_path / "stopped", ["train.steps=4"])
    _assert_identical(load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt"),
                      load_checkpoint(tmp_path / "stopped" / "checkpoints" / "latest.pt"))
    position = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "latest.pt")["rng"]["data"]
    assert (position["epoch"], position["position"]) == (1, 8)  # 4 batches of 8 from 24 images: 3 per epoch


def test_building_or_streaming_leaves_the_global_rng_alone(tmp_path):
    # Weights are initialised from the global RNG right after the dataset is built: a run that
    # had to build its cache must start from the same weights as one that found it.
    write_image_folder(tmp_path / "imgs", 12)
    state = torch.get_rng_state()
    ds = build_dataset(fake_config("imagefolder", tmp_path, path=str(tmp_path / "imgs"), num_workers=1,
                                   in_memory_budget_mb=0))
    ds.loader(4, seed=0, device=CPU).next()
    assert torch.equal(torch.get_rng_state(), state)


def test_cache_dir_setting(tmp_path):
    write_image_folder(tmp_path / "imgs", 9)
    build_dataset(fake_config("imagefolder", tmp_path, path=str(tmp_path / "imgs"),
                              cache_dir=str(tmp_path / "elsewhere")))
    assert len(list((tmp_path / "elsewhere").glob("*.h5"))) == 1 and not (tmp_path / "cache").exists()
    assert os.access(next((tmp_path / "elsewhere").glob("*.h5")), os.R_OK)


# --- Through the real CLI -----------------------------------------------------------------------


def test_cli_prepare_then_train_on_a_messy_folder(tmp_path):
    from conftest import run_cli

    write_messy_folder(tmp_path / "messy")
    keys = [f"data.path={tmp_path / 'messy'}", f"data.root={tmp_path}", "data.channels=3"]
    proc = run_cli("data", "prepare", "imagefolder", *keys, "--resolution", "32", check=True)
    assert "building HDF5 cache" in proc.stderr and "caching imagefolder" in proc.stderr  # the progress bar
    assert "cache ready:" in proc.stdout and "-32px-3ch-" in proc.stdout
    proc = run_cli("train", "dcgan-mnist", "data.name=imagefolder", "data.resolution=32", *keys, *TINY_TRAIN,
                   "--out", str(tmp_path / "runs"), "--name", "r", check=True)
    assert "building" not in proc.stderr  # the prepared cache is what training reads
    lines = proc.stderr.splitlines()
    assert [line for line in lines if "unreadable" in line] == [
        f"warning: skipped 2 unreadable (corrupted or truncated) image files under {tmp_path / 'messy'}: "
        "cats/corrupted.png, dogs/photos/truncated.jpg."]
    assert (tmp_path / "runs" / "r" / "checkpoints" / "latest.pt").is_file()


def test_cli_empty_folder_is_one_sentence(tmp_path):
    from conftest import assert_user_error, run_cli

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    proc = run_cli("train", "dcgan-mnist", "data.name=imagefolder", f"data.path={tmp_path / 'empty'}",
                   "--out", str(tmp_path / "runs"))
    assert_user_error(proc, "has no image files", "data.path")
    assert list((tmp_path / "runs").iterdir()) == []


def test_real_face_photos_train_a_dcgan_at_64px(tmp_path):
    # Real photos, no preparation by hand: the 100 faces of scikit-image's LFW subset as JPEGs.
    from PIL import Image
    from skimage.data import lfw_subset

    from gankit.training.loop import build_run, training_loop

    for i, face in enumerate(lfw_subset()[:100]):  # (25, 25) floats in [0, 1]; the last 100 are not faces
        sub = tmp_path / "faces" / f"person_{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((face * 255).round().astype(np.uint8)).save(sub / f"{i:03d}.jpg", quality=95)
    cfg = config_lib.resolve("dcgan-mnist", TINY_TRAIN + [
        "data.name=imagefolder", f"data.path={tmp_path / 'faces'}", f"data.root={tmp_path}",
        "data.resolution=64", "data.channels=3", "data.num_workers=0"])
    with pytest.warns(DataWarning, match="upscaled 100 images .* smaller than 64 px"):
        run = build_run(cfg, tmp_path, CPU)
    assert len(run.dataset) == 100 and run.dataset.shape == (3, 64, 64)
    training_loop(run, hooks=[])
    assert run.step == 2
    assert run.G(run.preview_inputs["z"][:2]).shape == (2, 3, 64, 64)


@pytest.mark.parametrize("key, value, fragment", [
    ("center_crop", 0, "data.center_crop must be positive"), ("max_images", -1, "data.max_images"),
    ("stacked_source", "emnist", "mnist or mnist5k"), ("stacked_size", -5, "data.stacked_size"),
    ("num_workers", -2, "data.num_workers"),
])
def test_bad_data_settings_are_one_sentence(key, value, fragment):
    with pytest.raises(GankitError, match=fragment):
        config_lib.with_overrides(config_lib.Config(), [f"data.{key}={value}"])
