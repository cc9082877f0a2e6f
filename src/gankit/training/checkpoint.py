"""Checkpoints: a dict of state_dicts, tensors and plain values, never pickled code.

Saved atomically (temp file then os.replace) and loaded with `torch.load(weights_only=True)`,
so a checkpoint from a stranger cannot run code. Every RNG state is in it, which is what makes
a resumed run bit-identical on CPU to one that never stopped.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.errors import GankitError
from gankit.utils import atomic_write

REQUIRED_KEYS = ("G", "D", "G_ema", "opt_G", "opt_D", "step", "images_seen", "rng", "config", "data_shape",
                 "num_classes")


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
