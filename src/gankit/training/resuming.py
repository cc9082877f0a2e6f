"""What a resume checks and records: the checkpoint is this run's, and config.yaml says what changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gankit import config as config_lib
from gankit.config import Config
from gankit.errors import GankitError

# Where the data lives and how it is read say nothing about which run a checkpoint belongs to.
NOT_IDENTITY = {"data.root", "data.download", "data.in_memory_budget_mb", "data.cache_dir", "data.num_workers"}


def check_same_run(cfg: Config, run_dir: Path, payload: dict[str, Any], path: Path) -> None:
    """A checkpoint resumes only the run that made it: same data, model and loss as config.yaml and `cfg`."""
    theirs = payload["config"]
    for name, ours in (("config.yaml", _read_config(run_dir)), ("the config", config_lib.to_dict(cfg))):
        if ours is None:
            continue
        for section in ("data", "model", "loss"):
            for key, value in ours[section].items():
                if f"{section}.{key}" not in NOT_IDENTITY and theirs.get(section, {}).get(key, value) != value:
                    raise GankitError(
                        f"checkpoint {path} belongs to another run ({section}.{key} is {theirs[section][key]!r} "
                        f"there, {value!r} in {name}); put this run's own checkpoint back, or resume the run "
                        "that made it.")


def _read_config(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "config.yaml"
    return config_lib.to_dict(config_lib.load(path)) if path.is_file() else None


def check_data_shape(run, payload: dict[str, Any], path: Path) -> None:
    ours = (list(run.dataset.shape), int(run.dataset.num_classes))
    theirs = (list(payload["data_shape"]), int(payload["num_classes"]))
    if ours != theirs:
        raise GankitError(f"checkpoint {path} was trained on data of shape {theirs[0]} with {theirs[1]} classes, "
                          f"but the data now has shape {ours[0]} with {ours[1]} classes; restore the data it "
                          "was trained on, or start a new run.")


def keep_old_config(run_dir: Path, cfg: Config, step: int) -> None:
    """Keep the previous config.yaml as config.yaml.N; the new one starts with what changed."""
    import yaml

    from gankit.utils import atomic_write_text

    path = run_dir / "config.yaml"
    lines = [f"# resumed at step {step} from checkpoints/latest.pt"]
    old = _read_config(run_dir)
    if old is not None:
        number = 1
        while path.with_name(f"config.yaml.{number}").exists():
            number += 1
        os.replace(path, path.with_name(f"config.yaml.{number}"))
        new = config_lib.to_dict(cfg)
        changed = [f"{section}.{key}: {old[section].get(key)!r} -> {value!r}"
                   for section in ("train", "eval") for key, value in new[section].items()
                   if old[section].get(key) != value]
        lines.append(f"# the previous config is config.yaml.{number}; changed: {'; '.join(changed) or 'nothing'}")
    atomic_write_text(path, "\n".join(lines) + "\n" + yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False))


# Keys whose change a resumed run could not honour: the restored RNG states replace any new seed,
# and one optimizer's state cannot drive another.
NOT_RESUMABLE = {"train.seed": "the restored random states would ignore a new seed",
                 "train.optimizer": "the saved optimizer state belongs to the old optimizer"}
