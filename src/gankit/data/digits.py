"""scikit-learn's 1,797 handwritten digits (`digits`), and digits vs MNIST as two unpaired domains.

`load_digits()` holds 8x8 images with 17 grey levels (0-16), from the UCI "Optical Recognition of
Handwritten Digits" set, ink bright as in MNIST. They are scaled to 0-255 and upscaled (bilinear,
antialiased) to `data.resolution`, so they are blurred, blocky digits of the same ten classes as
MNIST. Their split is fixed like mnist5k's: every tenth image (179) is `test`, the rest `train`.

`digits2mnist` pairs them with mnist5k as CycleGAN's unpaired domains (A = scikit-learn digits,
B = MNIST), an offline translation task whose success can be measured: a translation should keep
the digit's class (see the `label_preservation` metric). `data.domain=A|B` builds one side alone,
with its class labels, for reference statistics and the classifiers that judge translations.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.data import register_dataset
from gankit.data.mnist import _finish, build_mnist5k
from gankit.data.unpaired import UnpairedImages, one_domain


@register_dataset("digits")
def build_digits(cfg):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255 / 16)).astype(np.uint8))  # (1797, 8, 8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    is_test = torch.arange(len(labels)) % 10 == 9
    keep = is_test if cfg.split == "test" else ~is_test
    return _finish(images[keep], labels[keep], cfg)


@register_dataset("digits2mnist")
def build_digits2mnist(cfg):
    return one_domain(UnpairedImages(build_digits(cfg), build_mnist5k(cfg)), cfg)
