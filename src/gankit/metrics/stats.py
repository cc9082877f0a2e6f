"""Shared feature statistics: mean and covariance, and the Fréchet distance between Gaussians.

The matrix square root is where FID implementations disagree most (issue 4), so it is done one
way, in float64, and checked against pytorch-fid's `scipy.linalg.sqrtm` in the tests:

    tr sqrt(S1 S2) = sum_i sqrt(lambda_i(F^T S2 F)),  with S1 = F F^T

F^T S2 F is similar to S1 S2 (same eigenvalues) and symmetric positive semi-definite, so its
eigenvalues come from a symmetric eigensolver (`eigvalsh`): exact up to rounding, never complex,
and much faster than the Schur-based `sqrtm` in 2048 dimensions (benchmarks/eval_speed.py).
F is the Cholesky factor of S1, or its symmetric square root when S1 is singular.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from gankit.errors import GankitError


class SingularCovarianceWarning(UserWarning):
    """Fewer samples than feature dimensions: the covariance is singular and FID is biased up."""


@dataclass
class FeatureStats:
    mean: np.ndarray  # (D,) float64
    cov: np.ndarray  # (D, D) float64, unbiased (N - 1)
    n: int


def feature_statistics(features: torch.Tensor | np.ndarray) -> FeatureStats:
    """Mean and unbiased covariance of (N, D) features, computed in float64."""
    x = torch.as_tensor(features).double().cpu()
    n, d = x.shape
    if n < 2:
        raise GankitError(f"feature statistics need at least 2 samples, not {n}; raise the sample count.")
    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / (n - 1)
    return FeatureStats(mean.numpy(), cov.numpy(), n)


def warn_if_singular(n: int, dim: int, what: str) -> bool:
    """Warn (once per call, on stderr too) when n samples cannot give a full-rank covariance."""
    if n > dim:
        return False
    message = (f"{what}: {n} samples in {dim} dimensions give a singular covariance, so the score is "
               f"biased and not comparable; use more than {dim} samples.")
    warnings.warn(message, SingularCovarianceWarning, stacklevel=3)
    print(f"warning: {message}", file=sys.stderr)
    return True


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric PSD matrix; tiny negative eigenvalues from rounding clip to 0."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def _not_finite(what: str) -> GankitError:
    return GankitError(f"{what} is not finite: the features hold NaN or inf values; check the generator's "
                       "samples and the backbone weights.")


def frechet_distance(a: FeatureStats, b: FeatureStats, what: str = "FID") -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)  (Heusel et al. 2017)."""
    dim = a.mean.shape[0]
    if not all(np.isfinite(x).all() for x in (a.mean, a.cov, b.mean, b.cov)):
        raise _not_finite(what)
    warn_if_singular(min(a.n, b.n), dim, what)
    mu_a, mu_b = torch.from_numpy(a.mean), torch.from_numpy(b.mean)
    cov_a, cov_b = torch.from_numpy(a.cov), torch.from_numpy(b.cov)
    # Any factor F with S_a = F F^T works, since F^T S_b F is similar to S_a S_b: Cholesky when S_a is
    # positive definite (fast), else the symmetric root from eigh (singular covariances).
    factor, info = torch.linalg.cholesky_ex(cov_a)
    if info != 0:
        factor = _psd_sqrt(cov_a)
    middle = factor.T @ cov_b @ factor
    middle = (middle + middle.T) / 2  # symmetric in exact arithmetic; make it so in floating point
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    value = float(((mu_a - mu_b) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt)
    if not np.isfinite(value):
        raise _not_finite(what)
    return value


# ---------------------------------------------------------------------------------------------
# k-nearest-neighbour balls, shared by precision/recall and density/coverage.

CHUNK = 1024  # rows of the distance matrix held at once: 1024 x 10,000 float64 is 80 MB


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b)  # (len(a), len(b)) Euclidean, float64 in, float64 out


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) distance from each row of x to its k-th nearest other row (the row itself excluded)."""
    x = x.double()
    if len(x) <= k:
        raise GankitError(f"k-nearest-neighbour metrics with k={k} need more than {k} samples, not {len(x)}.")
    radii = [_distances(x[i:i + CHUNK], x).topk(k + 1, dim=1, largest=False).values[:, k]
             for i in range(0, len(x), CHUNK)]
    return torch.cat(radii)


def ball_counts(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """(len(points),) how many balls (centre_j, radius_j) contain each point (strictly inside)."""
    points, centres = points.double(), centres.double()
    counts = [(_distances(points[i:i + CHUNK], centres) < radii[None, :]).sum(1)
              for i in range(0, len(points), CHUNK)]
    return torch.cat(counts)


def nearest_distance(points: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """(len(points),) distance from each point to its nearest row of `others`."""
    points, others = points.double(), others.double()
    return torch.cat([_distances(points[i:i + CHUNK], others).min(1).values for i in range(0, len(points), CHUNK)])


def kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(p || uniform) of a histogram over len(counts) bins: 0 when every bin holds the same
    share, log(bins) when one bin holds all. Empty bins add nothing (0 log 0 = 0)."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float((p * (p * len(counts)).log()).sum())
