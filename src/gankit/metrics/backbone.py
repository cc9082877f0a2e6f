"""What every feature backbone shares: the image conversion and batched, channels_last inference."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

_HASHES: dict[tuple[str, float, int], str] = {}


def file_sha256(path: Path) -> str:
    """The first 16 hex digits of a file's SHA-256: the weights hash in every protocol record."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime, stat.st_size)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()[:16]
    return _HASHES[key]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """G's range [-1, 1] -> uint8 [0, 255], rounded: what a saved PNG would hold.

    Real images make the same round trip (uint8 -> [-1, 1] -> uint8 is exact), so real and
    generated images reach a backbone through one path.
    """
    return ((images.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


class Backbone:
    """A feature extractor: `__call__(images (N, C, H, W) in [-1, 1])` -> {"pool": (N, D), "logits": (N, K)}."""

    name: str  # e.g. "inception-2015-12-05", "classifier:mnist5k"
    weights_hash: str
    resize: str  # how images reach the network's input size, recorded with every score
    batch_size: int = 64

    def forward_batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs: dict[str, list[torch.Tensor]] = {}
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                for key, value in self.forward_batch(images[start:start + self.batch_size]).items():
                    outputs.setdefault(key, []).append(value.float().cpu())
        return {key: torch.cat(values) for key, values in outputs.items()}
