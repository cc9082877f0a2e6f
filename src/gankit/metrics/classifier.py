"""A small CNN trained on the dataset itself: classifier-FID/IS and Stacked-MNIST modes on a CPU.

TF-GAN measures MNIST GANs with a classifier trained on MNIST rather than with Inception, whose
ImageNet features say little about digits. gankit does the same for any labelled dataset:
`gankit classifier train --data mnist5k` trains this net on the train split, reports accuracy on
the test split, and saves the weights with their SHA-256. The penultimate layer (128 ReLU units)
gives classifier-FID features; the logits give classifier-IS and Stacked-MNIST digit labels.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import DataConfig
from gankit.data.base import to_unit_range
from gankit.errors import GankitError
from gankit.metrics.backbone import Backbone, file_sha256, to_uint8
from gankit.utils import atomic_write, atomic_write_text

FEATURE_DIM = 128


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks with BatchNorm, pooling to 4x4, a 128-unit penultimate layer, logits.

    Adaptive pooling makes it work at any resolution; the whole net is ~0.16 M parameters, so
    a few epochs on 5,000 digits take well under a minute on two CPU cores.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),  # 4x4 keeps where strokes are, at any input size
            nn.Linear(64 * 16, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)  # (N, 128) penultimate
        return features, self.head(features)  # (N, num_classes) logits


def default_classifier_path(cache_dir: Path, data: DataConfig) -> Path:
    domain = f"-{data.domain}" if data.domain else ""  # one side of an unpaired dataset: its own classes
    return Path(cache_dir) / "classifiers" / f"{data.name}{domain}-{data.resolution}px-{data.channels}ch.pt"


def _all_images(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, C, H, W), labels (N,)) of a labelled in-memory dataset."""
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if images is None or labels is None or not getattr(dataset, "num_classes", 0):
        raise GankitError("the classifier trains on a labelled image dataset (such as mnist5k, mnist, "
                          "fashion-mnist, cifar10); this one has no labels.")
    return images, labels


@torch.no_grad()
def accuracy(net: SmallCNN, images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> float:
    net.eval()
    correct = 0
    for start in range(0, len(images), 500):
        _, logits = net(to_unit_range(images[start:start + 500]).to(device))
        correct += int((logits.argmax(1).cpu() == labels[start:start + 500]).sum())
    return correct / len(images)


def train_classifier(data: DataConfig, out: Path, epochs: int = 4, batch_size: int = 64, lr: float = 1e-3,
                     seed: int = 0, device: str = "cpu", log=print) -> dict:
    """Train on `data`'s train split, test on its test split, save weights + meta atomically."""
    from gankit.data import build_dataset

    torch.manual_seed(seed)
    device_ = torch.device(device)
    train_images, train_labels = _all_images(build_dataset(replace(data, split="train")))
    test_set = build_dataset(replace(data, split="test"))
    test_images, test_labels = _all_images(test_set)
    net = SmallCNN(train_images.shape[1], test_set.num_classes).to(device_)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    # Cosine decay to zero: the last epoch settles instead of ending on a noisy step.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * -(-len(train_images) // batch_size))
    order_rng = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(train_images), generator=order_rng)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            x = to_unit_range(train_images[index]).to(device_)
            # Small random shifts (up to 2 px) keep a net trained on 4,500 digits from overfitting.
            shift = torch.randint(-2, 3, (2,), generator=order_rng).tolist()
            x = torch.roll(x, shifts=shift, dims=(2, 3))
            _, logits = net(x)
            loss = F.cross_entropy(logits, train_labels[index].to(device_))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        log(f"epoch {epoch + 1}/{epochs}  loss {loss.item():.3f}  "
            f"test accuracy {accuracy(net, test_images, test_labels, device_):.4f}")
    meta = {
        "dataset": f"{data.name}/{data.domain}" if data.domain else data.name,
        "resolution": data.resolution, "channels": int(train_images.shape[1]),
        "num_classes": int(test_set.num_classes), "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "seed": seed, "n_train": len(train_images), "n_test": len(test_images),
        "test_accuracy": accuracy(net, test_images, test_labels, device_),
        "seconds": round(time.perf_counter() - started, 1),
    }
    payload = {"state_dict": {k: v.cpu() for k, v in net.state_dict().items()}, "meta": meta}
    out = Path(out)
    atomic_write(out, lambda tmp: torch.save(payload, tmp))
    meta["sha256"] = file_sha256(out)
    meta["path"] = str(out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return meta


class ClassifierBackbone(Backbone):
    """pool: (N, 128) penultimate ReLU features (classifier-FID); logits: (N, classes) (classifier-IS)."""

    resize = "none (native resolution)"
    batch_size = 500

    def __init__(self, path: str | os.PathLike, device: torch.device | str = "cpu"):
        path = Path(path)
        if not path.is_file():
            raise GankitError(f"no classifier at {path}; train one with `gankit classifier train --data NAME` "
                              "(--domain A or B for one side of unpaired data) or set eval.classifier to its file.")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            self.meta = payload["meta"]
            self.net = SmallCNN(self.meta["channels"], self.meta["num_classes"])
            self.net.load_state_dict(payload["state_dict"])
        except Exception as exc:
            raise GankitError(f"{path} is not a gankit classifier ({type(exc).__name__}); retrain it with "
                              "`gankit classifier train`.") from None
        self.device = torch.device(device)
        self.net.to(self.device).eval()
        self.name = f"classifier:{self.meta['dataset']}"
        self.weights_hash = file_sha256(path)

    def check_input(self, channels: int) -> None:
        # Resolution needs no check: the net pools adaptively, so any size works.
        if channels != self.meta["channels"]:
            raise GankitError(f"the classifier {self.name} takes {self.meta['channels']}-channel images, "
                              f"not {channels}; train one on this dataset with `gankit classifier train`.")

    def forward_batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        # Quantised like a saved PNG, as the Inception path does, so fakes and reals match in kind.
        features, logits = self.net(to_unit_range(to_uint8(images)).to(self.device))
        return {"pool": features, "logits": logits}
