"""The penalty registry: regularisers of D added to its loss in the D phase.

A penalty is an object with a `weight` and an `every` (in training steps); the loop calls
`penalty(nets, batch, step)` for every D batch and adds the named terms it returns (none on
steps it skips). Keeping penalties apart from losses lets any loss take any penalty:
WGAN-GP is `loss.name=wasserstein loss.clip=0 loss.penalties=[gp]`, and PGGAN's loss adds `drift`.

Penalties that need random numbers draw them from the global torch RNG, whose state every
checkpoint saves, so a resumed run draws the same numbers as one that never stopped.
"""

from __future__ import annotations

import torch

from gankit.losses import Batch, Terms
from gankit.nets import Nets
from gankit.registry import Registry


class Penalty:
    name = "penalty"

    def __init__(self, weight: float, every: int = 1):
        self.weight = weight  # multiplies the term
        self.every = every  # apply on training steps where step % every == 0 (lazy regularisation)

    def __call__(self, nets: Nets, batch: Batch, step: int) -> Terms:
        if step % self.every:
            return {}
        return {f"D/{self.name}": self.weight * self.compute(nets, batch)}

    def compute(self, nets: Nets, batch: Batch) -> torch.Tensor:
        raise NotImplementedError


def input_gradient(nets: Nets, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """d sum(D(x)) / dx, kept in the graph so the penalty itself can be backpropagated.

    Each logit depends only on its own sample (no BatchNorm in a penalised D), so row i of the
    result is the gradient of D(x_i) with respect to x_i.
    """
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(nets.D(x, labels).sum(), x, create_graph=True)
    return grad.flatten(1)  # (B, prod(data_shape))


PENALTIES: Registry = Registry("penalty")
register_penalty = PENALTIES.register
list_penalties = PENALTIES.list


def build_penalties(cfg) -> list[Penalty]:
    """The penalties named in the loss config, each built with its own weight and interval."""
    return [PENALTIES.build(name, cfg) for name in cfg.penalties]


from gankit.penalties import div, drift, gp, r1  # noqa: E402,F401
