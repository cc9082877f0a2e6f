"""The metric registry: one file per metric, each an object that turns an `Evaluation` into scores.

A metric reads what it needs from the `Evaluation` (generated samples, their features under a
backbone, the reference statistics, the dataset's modes) and returns named scalars, such as
`{"is": 2.61, "is_std": 0.03}`. The evaluator appends each scalar to `metrics.jsonl` with its
protocol (sample counts, reference split, backbone and weights hash, resize, network, step...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gankit.registry import Registry

if TYPE_CHECKING:
    from gankit.metrics.evaluate import Evaluation


class Metric:
    """A score over generated samples; `backbone` names the feature extractor it uses, if any."""

    backbone: str = ""  # inception | classifier | digit-classifier | "" (none)
    headline: str = ""  # the scalar that stands for the metric (best checkpoint, collapse)
    lower_is_better: dict[str, bool] = {}  # per scalar it returns: which way is better
    min_samples: int = 2  # generated samples below which the score means nothing (a statistic needs two)

    def __call__(self, ev: Evaluation) -> dict[str, float]:
        raise NotImplementedError

    def details(self, ev: Evaluation) -> dict:
        """Metric-specific protocol fields (k, subsets, splits...) stored beside each score."""
        return {}


METRICS: Registry = Registry("metric")
register_metric = METRICS.register
get_metric = METRICS.get
list_metrics = METRICS.list


def build_metric(name: str) -> Metric:
    return METRICS.build(name)


def require_samples(names: list[str], n: int, what: str = "eval.num_samples") -> None:
    """Refuse, before any sample is drawn, a sample count too small for one of the metrics."""
    from gankit.errors import GankitError

    for name in names:
        needed = build_metric(name).min_samples
        if n < needed:
            raise GankitError(f"{name} needs at least {needed} generated samples, but {what} is {n}; "
                              f"raise it to {needed} or more (thousands for scores worth comparing).")


from gankit.metrics import (  # noqa: E402,F401
    density_coverage,
    diversity,
    fid,
    inception_score,
    kid,
    label_preservation,
    modes2d,
    precision_recall,
    stacked_mnist,
    swd,
)
