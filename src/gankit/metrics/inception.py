"""The standard TF-FID Inception-v3 (`pt_inception-2015-12-05`), on torch-fidelity's extractor.

Papers report FID and IS with the 2015-12-05 TensorFlow Inception graph. torch-fidelity ships a
PyTorch port of it that reproduces the TensorFlow features, including TF1's bilinear resize to
299 x 299; gankit builds on that port rather than rewriting it, and adds what makes it faster
here: channels_last memory format, `inference_mode`, and one pass for pool features and logits.
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch

from gankit.errors import GankitError
from gankit.metrics.backbone import Backbone, file_sha256, to_uint8

WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               "weights-inception-2015-12-05-6726825d.pth")
WEIGHTS_FILE = WEIGHTS_URL.rsplit("/", 1)[1]
WEIGHTS_SIZE = "about 96 MB"
RESIZE = "tf1-bilinear-299 (torch-fidelity), from uint8"


def default_weights_path() -> Path:
    """Where torch.hub (and so torch-fidelity) keeps the file: $TORCH_HOME/hub/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def find_weights(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The weights file: `path` if given, else the torch cache, downloaded there when missing."""
    if path:
        path = Path(path)
        if not path.is_file():
            raise GankitError(f"no Inception weights at {path}; pass the path of {WEIGHTS_FILE} ({WEIGHTS_SIZE}).")
        return path
    target = default_weights_path()
    if target.is_file():
        return target
    if download:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(WEIGHTS_URL, str(target), progress=True)
            return target
        except (urllib.error.URLError, OSError, TimeoutError):
            pass
    raise GankitError(
        f"the Inception weights {WEIGHTS_FILE} ({WEIGHTS_SIZE}) are not in {target.parent} and cannot be "
        f"downloaded here; fetch {WEIGHTS_URL} on a machine with a network and put the file there, "
        "or pass --inception-weights PATH (eval.inception_weights)."
    )


class InceptionBackbone(Backbone):
    """pool: (N, 2048) pool3 features (FID, KID, P/R); logits: (N, 1008) unbiased logits (IS)."""

    resize = RESIZE

    def __init__(self, weights: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                 batch_size: int = 64, download: bool = True):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = find_weights(weights, download)
        try:
            # torch-fidelity loads with weights_only=False; gankit first proves the file is only weights,
            # so a file from a stranger cannot run code here.
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise GankitError(f"{path} is not an Inception weights file ({type(exc).__name__}); "
                              f"replace it with {WEIGHTS_FILE} ({WEIGHTS_SIZE}).") from None
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path))
        self.device = torch.device(device)
        self.net.to(self.device, memory_format=torch.channels_last).eval()
        self.name = "inception-2015-12-05"
        self.weights_hash = file_sha256(path)
        self.batch_size = batch_size

    def forward_batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = to_uint8(images)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey -> RGB by repetition, as torch-fidelity's loaders do
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        pool, logits = self.net(x)
        return {"pool": pool, "logits": logits}
