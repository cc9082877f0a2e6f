"""A random-weight TF-FID Inception saved in the real weights format, so no test downloads anything.

The architecture is torch-fidelity's port of the 2015-12-05 graph; its convolutions are
re-initialised with Kaiming init (and BatchNorm given non-trivial statistics) so that features
are spread out rather than degenerate. gankit and torch-fidelity both load this one file.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch
from torch import nn


def write_random_inception(path: Path, seed: int = 0) -> Path:
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    path = Path(path)
    empty = path.with_suffix(".empty")
    torch.save({}, empty)
    # The constructor loads a state dict; give it an empty one and skip the load, to get the bare net.
    with mock.patch.object(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None):
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                       feature_extractor_weights_path=str(empty))
    empty.unlink()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(0.1 * torch.randn(module.num_features, generator=generator))
                module.running_var.copy_(1 + 0.1 * torch.rand(module.num_features, generator=generator))
            elif isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.05)
                module.bias.copy_(0.01 * torch.randn(module.bias.shape, generator=generator))
    torch.save(net.state_dict(), path)
    return path
