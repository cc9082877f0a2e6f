"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

KID is the squared MMD between real and generated Inception pool features under the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3, estimated without bias (the diagonal terms are left
out of the within-set sums). Unlike FID it is unbiased, so small sample counts compare fairly.
As in the paper's code, it is averaged over `SUBSETS` random subsets of `SUBSET_SIZE` samples
(fewer when fewer exist), drawn with numpy's RandomState(seed) without replacement.
"""

from __future__ import annotations

import numpy as np
import torch

from gankit.errors import GankitError
from gankit.metrics import Metric, register_metric

SUBSETS = 100
SUBSET_SIZE = 1000


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of (m, d) x and (m, d) y under (x.y/d + 1)^3."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kernel_distance(fake: torch.Tensor, real: torch.Tensor, subsets: int = SUBSETS,
                    subset_size: int = SUBSET_SIZE, seed: int = 0) -> tuple[float, float, int]:
    """(mean, std, subset size used) of the MMD^2 over random subsets."""
    size = min(subset_size, len(fake), len(real))
    if size < 2:
        raise GankitError(f"KID needs at least 2 generated and 2 real samples, not {len(fake)} and {len(real)}.")
    x, y = fake.double().numpy(), real.double().numpy()
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), size, replace=False)]
        b = y[rng.choice(len(y), size, replace=False)]
        values.append(polynomial_mmd2(a, b))
    return float(np.mean(values)), float(np.std(values)), size


class KernelInceptionDistance(Metric):
    backbone = "inception"
    headline = "kid"
    lower_is_better = {"kid": True, "kid_std": True}

    def __call__(self, ev) -> dict[str, float]:
        ev.require_images("kid")
        mean, std, self.size = kernel_distance(ev.fake_features("inception")["pool"], ev.reference("inception").pool,
                                               seed=ev.eval_cfg.seed)
        return {"kid": mean, "kid_std": std}

    def details(self, ev) -> dict:
        return {"subsets": SUBSETS, "subset_size": self.size, "kernel": "(x.y/d + 1)^3"}


@register_metric("kid")
def build_kid() -> Metric:
    return KernelInceptionDistance()
