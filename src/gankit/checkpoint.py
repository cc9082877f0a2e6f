"""Checkpoints and devices: the one low module that training, sampling and metrics all read.

A checkpoint is a dict of state_dicts, tensors and plain values, never pickled code.

Saved atomically (temp file then os.replace) and loaded with `torch.load(weights_only=True)`,
so a checkpoint from a stranger cannot run code. Every RNG state is in it, which is what makes
a resumed run bit-identical on CPU to one that never stopped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.errors import GankitError
from gankit.utils import atomic_write

# "objective" and "schedule" (state of the loss family and the lr schedule) are newer; a checkpoint
# without them restores both from their initial state.
REQUIRED_KEYS = ("G", "D", "G_ema", "opt_G", "opt_D", "step", "images_seen", "rng", "config", "data_shape",
                 "num_classes")


def pick_device(name: str) -> torch.device:
    """auto -> CUDA when present, else CPU; cpu, cuda or cuda:N when this machine has it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"train.device={name} but torch sees no CUDA GPU here; use train.device=auto or cpu.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise GankitError(f"train.device={name} but this machine has {torch.cuda.device_count()} CUDA devices "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1}).")
    return device


def capture_rng() -> dict[str, Any]:
    """The global RNG states: torch CPU, every CUDA device, numpy, and Python's random."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    def write(tmp: Path) -> None:
        # Through a Python file, so a full disk surfaces as OSError(ENOSPC) (as the RuntimeError's
        # context) rather than only torch's "unexpected pos" message from its own writer.
        with open(tmp, "wb") as f:
            torch.save(payload, f)

    atomic_write(Path(path), write)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"no checkpoint at {path}; train first, or name an existing checkpoint file.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, a pickle with code: all the same to a user
        raise GankitError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); it is corrupted or not a "
            "gankit checkpoint, so use another from its checkpoints/ folder."
        ) from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise GankitError(f"checkpoint {path} lacks {', '.join(missing)}; it is not a gankit training checkpoint.")
    return payload


def latest_checkpoint(run_dir: Path) -> Path:
    path = Path(run_dir) / "checkpoints" / "latest.pt"
    if not path.is_file():
        raise GankitError(f"{run_dir} has no checkpoints/latest.pt to resume from; check the path, or train it anew.")
    return path


def load_weights(module: torch.nn.Module | torch.optim.Optimizer, state: dict[str, Any], what: str) -> None:
    """load_state_dict, with a state that does not fit (another model's checkpoint) as one sentence."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError) as exc:
        detail = str(exc).strip().splitlines()
        detail = next((line.strip() for line in detail if "size mismatch" in line or "key" in line.lower()),
                      detail[0] if detail else type(exc).__name__)
        raise GankitError(f"the checkpoint's {what} does not fit the model its config describes "
                          f"({detail.rstrip('.')}); it was saved by other code or edited, so use a "
                          "checkpoint this gankit wrote.") from None


def resolve_checkpoint(run_dir: Path, checkpoint: str) -> Path:
    """latest, best, a step number, or a path -> the checkpoint file, or one sentence why not."""
    folder = Path(run_dir) / "checkpoints"
    if checkpoint in ("latest", "best"):
        path = folder / f"{checkpoint}.pt"
        if not path.is_file():
            hint = ("it is written when training evaluates eval.metrics" if checkpoint == "best"
                    else "train the run first")
            raise GankitError(f"{run_dir} has no checkpoints/{checkpoint}.pt; {hint}.")
        return path
    if checkpoint.isdigit():
        path = folder / f"step-{int(checkpoint):06d}.pt"
        if not path.is_file():
            steps = sorted(p.stem[5:].lstrip("0") or "0" for p in folder.glob("step-*.pt"))
            raise GankitError(f"{run_dir} has no checkpoint at step {checkpoint}; it has steps "
                              f"{', '.join(steps) or 'none'}, or use latest or best.")
        return path
    return Path(checkpoint)


@dataclass
class LoadedGenerator:
    """A trained generator in eval mode, with what is needed to draw from it."""

    G: torch.nn.Module
    objective: Any  # the run's loss family: it knows how G makes samples (noise, or images to translate)
    cfg: Any  # the run's Config
    payload: dict[str, Any]  # the whole checkpoint (step, images_seen, ...)
    device: torch.device
    path: Path


def load_generator(path: Path, network: str = "G_ema", payload: dict[str, Any] | None = None) -> LoadedGenerator:
    """G (or G_ema) of the checkpoint at `path`, rebuilt from its config, on the run's device.

    `payload` is the checkpoint at `path` when the caller has read it already."""
    from gankit import config as config_lib
    from gankit.losses import build_objective
    from gankit.nets import build_nets

    payload = payload if payload is not None else load_checkpoint(path)
    cfg = config_lib.from_dict(payload["config"])
    device = pick_device(cfg.train.device)
    shape, num_classes = tuple(payload["data_shape"]), int(payload["num_classes"])
    G = build_nets(cfg.model, shape, num_classes).G
    load_weights(G, payload[network], network)
    G.to(device).eval()
    return LoadedGenerator(G, build_objective(cfg, shape, num_classes), cfg, payload, device, Path(path))
