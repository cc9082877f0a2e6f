"""The standard TF-FID Inception-v3 (`pt_inception-2015-12-05`), on torch-fidelity's extractor.

Papers report FID and IS with the 2015-12-05 TensorFlow Inception graph. torch-fidelity ships a
PyTorch port of it that reproduces the TensorFlow features, including TF1's bilinear resize to
299 x 299; gankit builds on that port (its layers and weight loading) rather than rewriting it,
and runs it faster on CPU: the resize as two matmuls, BatchNorm folded into the convolutions,
channels_last memory format, `inference_mode`, and one pass for pool features and logits.
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


# torch-fidelity's forward, layer by layer; gankit runs the same modules in this order.
_TRUNK = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
          "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
          "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")
INPUT_SIZE = 299


def tf1_resize_matrix(in_size: int, out_size: int = INPUT_SIZE) -> torch.Tensor:
    """(out_size, in_size) weights of TF1's bilinear resize (align_corners=False) along one axis.

    TF1 samples input coordinate `i * in/out` for output pixel i and blends its floor and the next
    pixel (clamped at the edge). The coordinates are computed in float32, as torch-fidelity does,
    so that floor() lands on the same pixel. Every row sums to 1, so the resize commutes with the
    affine normalisation applied before it.
    """
    coords = torch.arange(out_size, dtype=torch.float32) * torch.tensor(in_size / out_size, dtype=torch.float32)
    lo = coords.long()
    hi = (lo + 1).clamp_max(in_size - 1)
    frac = coords - lo.float()
    weights = torch.zeros(out_size, in_size)
    rows = torch.arange(out_size)
    weights[rows, lo] += 1 - frac
    weights[rows, hi] += frac
    return weights


class InceptionBackbone(Backbone):
    """pool: (N, 2048) pool3 features (FID, KID, P/R); logits: (N, 1008) unbiased logits (IS).

    Equal to torch-fidelity's extractor to float rounding (tests/test_metrics.py), and faster on
    CPU by three changes that leave the function alone:
    - the TF1 bilinear resize is two small matmuls, `Ry @ x @ Rx^T`, instead of four gathers at 299 x 299;
    - each eval-mode BatchNorm is folded into the convolution before it;
    - activations are channels_last, which oneDNN's convolutions prefer.
    """

    resize = RESIZE

    def __init__(self, weights: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                 batch_size: int = 64, download: bool = True):
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d, FeatureExtractorInceptionV3

        path = find_weights(weights, download)
        try:
            # torch-fidelity loads with weights_only=False; gankit first proves the file is only weights,
            # so a file from a stranger cannot run code here.
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise GankitError(f"{path} is not an Inception weights file ({type(exc).__name__}); "
                              f"replace it with {WEIGHTS_FILE} ({WEIGHTS_SIZE}).") from None
        net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path))
        for block in net.modules():
            if isinstance(block, BasicConv2d):  # conv -> BN -> ReLU becomes conv(+bias) -> ReLU
                block.conv, block.bn = fuse_conv_bn_eval(block.conv, block.bn), torch.nn.Identity()
        self.device = torch.device(device)
        self.trunk = torch.nn.Sequential(*(getattr(net, name) for name in _TRUNK))
        self.trunk.to(self.device, memory_format=torch.channels_last).eval()
        self.fc_weight = net.fc.weight.to(self.device)  # unbiased logits: the fc layer without its bias
        self._resize: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.name = "inception-2015-12-05"
        self.weights_hash = file_sha256(path)
        self.batch_size = batch_size

    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> the network's (N, 3, 299, 299) input, (x - 128) / 128 after TF1's resize."""
        key = tuple(x.shape[-2:])
        if key not in self._resize:
            self._resize[key] = (tf1_resize_matrix(key[0]).to(self.device), tf1_resize_matrix(key[1]).to(self.device))
        rows, cols = self._resize[key]
        x = (x.float() - 128) / 128  # rows of the resize sum to 1, so normalising first is the same map
        return (rows @ x @ cols.T).contiguous(memory_format=torch.channels_last)

    def forward_batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = to_uint8(images).to(self.device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey -> RGB by repetition, as torch-fidelity's loaders do
        pool = self.trunk(self._to_input(x)).flatten(1)
        return {"pool": pool, "logits": pool @ self.fc_weight.T}
