"""Mixed precision: `train.precision=fp32|bf16|fp16`.

- fp32: no autocast; every op in float32.
- bf16: autocast to bfloat16 on CPU and CUDA. bfloat16 has float32's exponent range, so
  gradients neither underflow nor overflow and no loss scaling is needed.
- fp16: autocast to float16 plus one GradScaler per network (Micikevicius et al. 2018, "Mixed
  precision training", sec. 3.2): each loss is multiplied by a scale before backward so small
  gradients survive float16, and the optimizer step is skipped, and the scale halved, when any
  gradient is inf or NaN, so a non-finite step never reaches the weights. G and D get separate
  scalers because their gradients have different magnitudes.

Only the forward passes of training run under autocast. Weights, optimizer state, EMA,
sample grids and every metric stay in float32 (the Fréchet distance in float64).
"""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    def __init__(self, name: str, device: torch.device, networks: tuple[str, ...] = ("G", "D")):
        self.name = name
        self.device_type = torch.device(device).type
        self.dtype = DTYPES[name]
        # A disabled scaler passes losses and steps through unchanged, so fp32 and bf16 share the path.
        self.scalers = {net: torch.amp.GradScaler(self.device_type, enabled=name == "fp16") for net in networks}

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, net: str) -> None:
        self.scalers[net].scale(loss.float()).backward()

    def step(self, optimizer: torch.optim.Optimizer, net: str) -> None:
        """The optimizer step of `net`, skipped by its scaler when a gradient is not finite."""
        scaler = self.scalers[net]
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict:
        return {net: scaler.state_dict() for net, scaler in self.scalers.items()}

    def load_state_dict(self, state: dict) -> None:
        for net, scaler_state in state.items():
            if net in self.scalers and scaler_state:
                self.scalers[net].load_state_dict(scaler_state)
