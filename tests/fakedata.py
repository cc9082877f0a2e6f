"""Fake datasets written in their real on-disk formats, so no test ever downloads."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """IDX3 (magic 2051, big-endian sizes), gzipped, as MNIST is published."""
    n, h, w = images.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def write_fake_mnist(root: Path, folder: str = "MNIST", n_train: int = 80, n_test: int = 20, seed: int = 0):
    """root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; returns the arrays."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)
        arrays[prefix] = (images, labels)
    return arrays


def write_fake_fashion_mnist(root: Path, n_train: int = 80, n_test: int = 20, seed: int = 1):
    """Fashion-MNIST ships in MNIST's exact format, under torchvision's FashionMNIST/raw/."""
    return write_fake_mnist(root, "FashionMNIST", n_train, n_test, seed)


def write_fake_cifar10(root: Path, per_batch: int = 12, n_test: int = 10, seed: int = 0):
    """root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}, pickled as published.

    Each batch is a dict with 'data' ((n, 3072) uint8 rows: 1024 red, 1024 green, 1024 blue
    values, row-major) and 'labels'. Returns {"train": (images NHWC, labels), "test": ...}.
    """
    import pickle

    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    out = {"train": ([], []), "test": ([], [])}
    batches = [(f"data_batch_{i}", "train", per_batch) for i in range(1, 6)] + [("test_batch", "test", n_test)]
    for name, split, n in batches:
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)  # HWC
        labels = rng.integers(0, 10, size=n).tolist()
        rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # the planar layout of the real files
        entry = {"batch_label": f"fake {name}", "labels": labels, "data": rows,
                 "filenames": [f"img_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        out[split][0].append(images)
        out[split][1].extend(labels)
    meta = {"num_cases_per_batch": per_batch, "num_vis": 3072,
            "label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck"]}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return {split: (np.concatenate(imgs), np.array(labels)) for split, (imgs, labels) in out.items()}


CELEBA_ATTRIBUTES = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Male", "Smiling", "Young"]


def write_fake_celeba(root: Path, n: int = 20, seed: int = 0):
    """root/celeba/img_align_celeba/NNNNNN.jpg (178x218), list_eval_partition.txt, list_attr_celeba.txt.

    Each face is a blue 108x108 centred square (the default crop) on a red background, so a
    correct crop-then-resize gives an all-blue image. Partitions cycle train, train, valid, test.
    Returns {file name: (partition, {attribute: +1/-1})}.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = Path(root) / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    table = {}
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        pixels = np.zeros((218, 178, 3), np.uint8)
        pixels[..., 0] = 255  # red background
        top, left = (218 - 108) // 2, (178 - 108) // 2
        pixels[top:top + 108, left:left + 108] = (0, 0, 255)
        Image.fromarray(pixels).save(images / name, quality=100, subsampling=0)  # 4:4:4: sharp square edges
        table[name] = ("0012"[(i - 1) % 4], {a: int(rng.choice([-1, 1])) for a in CELEBA_ATTRIBUTES})
    (folder / "list_eval_partition.txt").write_text("".join(f"{k} {p}\n" for k, (p, _) in table.items()))
    lines = [str(n), " ".join(CELEBA_ATTRIBUTES)]
    lines += [f"{k} " + " ".join(f"{v[a]:2d}" for a in CELEBA_ATTRIBUTES) for k, (_, v) in table.items()]
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return table


def write_messy_folder(root: Path, good_per_class: int = 6) -> dict:
    """A folder as users have them: nested classes, every awkward mode, broken files, a stray text file.

    root/cats/ and root/dogs/photos/ hold good 48x40 RGB JPEGs; beside them: a corrupted PNG, a
    truncated JPEG, an RGBA PNG (left half transparent), a palette PNG, a 16-bit greyscale PNG at
    half scale (32768), a tiny 5x5 PNG and notes.txt. Returns counts and the special files' paths.
    """
    from PIL import Image

    rng = np.random.default_rng(0)
    root = Path(root)
    cats, dogs = root / "cats", root / "dogs" / "photos"
    cats.mkdir(parents=True, exist_ok=True)
    dogs.mkdir(parents=True, exist_ok=True)
    for folder, colour in ((cats, (200, 30, 30)), (dogs, (30, 30, 200))):
        for i in range(good_per_class):
            pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"good_{i}.jpg", quality=95)
    (cats / "corrupted.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(300))
    buffer = (cats / "good_0.jpg").read_bytes()
    (dogs / "truncated.jpg").write_bytes(buffer[: len(buffer) // 2])
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :, :3] = (0, 255, 0)
    rgba[:, 20:, 3] = 255  # left half fully transparent: shows as white
    Image.fromarray(rgba, "RGBA").save(cats / "rgba.png")
    palette = Image.fromarray(np.full((40, 40, 3), (0, 0, 255), np.uint8)).convert("P", palette=Image.ADAPTIVE)
    palette.save(dogs / "palette.png")
    Image.fromarray(np.full((40, 40), 32768, np.uint16)).save(cats / "grey16.png")
    Image.fromarray(np.full((5, 5, 3), 128, np.uint8)).save(dogs / "tiny.png")
    (cats / "notes.txt").write_text("not an image\n")
    return {"readable": 2 * good_per_class + 4, "unreadable": 2, "tiny": "dogs/photos/tiny.png",
            "rgba": "cats/rgba.png", "grey16": "cats/grey16.png", "palette": "dogs/photos/palette.png",
            "cats": good_per_class + 2, "dogs": good_per_class + 2}


def write_image_folder(folder: Path, n: int, size: tuple[int, int] = (40, 40), seed: int = 0) -> None:
    """n plain RGB PNGs of random noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")


def write_unpaired(root: Path, n_a: int = 10, n_b: int = 7) -> None:
    """root/trainA (n_a images), root/trainB (n_b), root/testA, root/testB: CycleGAN's layout."""
    root = Path(root)
    write_image_folder(root / "trainA", n_a, seed=1)
    write_image_folder(root / "trainB", n_b, seed=2)
    write_image_folder(root / "testA", 4, seed=3)
    write_image_folder(root / "testB", 4, seed=4)
