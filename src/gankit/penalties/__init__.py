"""The penalty registry: regularisers of D added to its loss in the D phase.

A penalty is an object with a `weight` and an `every` (in training steps); the loop calls
`penalty(nets, batch, step)` for every D batch and adds the named terms it returns (none on
steps it skips). Keeping penalties apart from losses lets any loss take any penalty:
WGAN-GP is `loss.name=wasserstein loss.clip=0 loss.penalties=[gp]`, and PGGAN's loss adds `drift`.

Penalties that need random numbers draw them from the global torch RNG, whose state every
checkpoint saves, so a resumed run draws the same numbers as one that never stopped. Under
several processes they draw through `gankit.ranks.draw_share`, so each rank gets its own rows.

Under `train.precision=fp16` the engine gives each penalty D's GradScaler: the gradient a
penalty differentiates is taken of the scaled output and unscaled afterwards, as the PyTorch
AMP notes prescribe, or small input gradients would underflow to 0 in half precision.
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
        self.grad_scaler: torch.amp.GradScaler | None = None  # D's loss scaler under fp16, set by the engine

    def __call__(self, nets: Nets, batch: Batch, step: int) -> Terms:
        if step % self.every:
            return {}
        value = self.weight * self.compute(nets, batch)
        if self.grad_scaler is not None and self.grad_scaler.is_enabled():
            value = ScaledOverflow.apply(value)
        return {f"D/{self.name}": value}


class ScaledOverflow(torch.autograd.Function):
    """Under fp16 a penalty's scaled input gradient overflows whenever the scale is one step too
    high (at the start, and after each growth of the scale); GradScaler then skips that step and
    lowers the scale, as designed. The penalty's value is then inf, which the logs and the
    divergence guard would take for a diverged run. So the value shows as 0, and its backward
    stays non-finite, so that the scaler still sees the overflow and skips the step."""

    @staticmethod
    def forward(ctx, value: torch.Tensor) -> torch.Tensor:
        finite = torch.isfinite(value)
        ctx.save_for_backward(finite)
        return torch.where(finite, value, torch.zeros_like(value))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (finite,) = ctx.saved_tensors
        return torch.where(finite, grad, torch.full_like(grad, float("nan")))

    def compute(self, nets: Nets, batch: Batch) -> torch.Tensor:
        raise NotImplementedError


def input_gradient(nets: Nets, x: torch.Tensor, labels: torch.Tensor | None,
                   scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """d sum(D(x)) / dx, kept in the graph so the penalty itself can be backpropagated.

    Each logit depends only on its own sample (no BatchNorm in a penalised D), so row i of the
    result is the gradient of D(x_i) with respect to x_i. With a `scaler` (fp16) the output is
    scaled before differentiating and the gradient unscaled after, without a host sync.
    """
    x = x.detach().requires_grad_(True)
    out = nets.D(x, labels).float().sum()
    if scaler is None or not scaler.is_enabled():
        (grad,) = torch.autograd.grad(out, x, create_graph=True)
        return grad.flatten(1)  # (B, prod(data_shape))
    (grad,) = torch.autograd.grad(scaler.scale(out), x, create_graph=True)
    return (grad / scaler.scale(torch.ones((), device=grad.device))).flatten(1)


PENALTIES: Registry = Registry("penalty")
register_penalty = PENALTIES.register
list_penalties = PENALTIES.list


def build_penalties(cfg) -> list[Penalty]:
    """The penalties named in the loss config, each built with its own weight and interval."""
    return [PENALTIES.build(name, cfg) for name in cfg.penalties]


from gankit.penalties import div, drift, gp, r1  # noqa: E402,F401
