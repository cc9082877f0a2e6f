"""Sweep specs: a base preset, a grid of settings, seeds and shared overrides -> a list of trials.

A spec is a small YAML file (see `studies/` and README "Sweeps"):

    name: ablation-mnist            # folder under --out; default: the file's stem
    preset: dcgan-mnist             # base preset of every trial (a grid value may name another)
    seeds: [0, 1]                   # train.seed of each trial; every setting runs once per seed
    overrides: [train.steps=300]    # shared by every trial, applied before the grid's
    grid:                           # one mapping (a product), or a list of them (a union of products)
      loss.name: [hinge, lsgan]     # a config key (or seed flag such as acml) and its values
      variant:                      # a named axis: label -> overrides (or {preset: P, overrides: [...]})
        plain: []
        sn: [sng, snd]
    slurm: {partition: gpu, gpus_per_trial: 1, time_minutes: 60}   # only read by --launcher slurm

Each trial is the product of one value per axis and one seed; its run directory is named after
its settings the way Hydra's multirun names them (`loss.name=hinge,variant=sn,seed=0`). Every
trial's config is resolved here, so an unknown key, preset or value is found before any trial starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gankit import config as config_lib
from gankit.errors import GankitError, did_you_mean

SPEC_KEYS = ("name", "description", "preset", "seeds", "overrides", "grid", "slurm")
# SLURM options a spec may set, each mapped to submitit's AutoExecutor parameter.
SLURM_KEYS = {
    "partition": "slurm_partition",  # SLURM partition (queue) name
    "gpus_per_trial": "gpus_per_node",  # GPUs given to each trial (one trial = one job = one node share)
    "cpus_per_trial": "cpus_per_task",  # CPU cores per trial; also its torch.set_num_threads
    "time_minutes": "timeout_min",  # wall-time limit of each trial's job, minutes
    "mem_gb": "mem_gb",  # memory per trial, GiB
    "account": "slurm_account",  # account to charge
    "qos": "slurm_qos",  # quality of service
    "max_parallel": "slurm_array_parallelism",  # trials of the job array running at once
    "constraint": "slurm_constraint",  # node features, such as a GPU model
}
_SAFE = re.compile(r"[^A-Za-z0-9._+\-=,]")


@dataclass
class Trial:
    """One run of the sweep: a setting (one label per axis) and a seed."""

    name: str  # run directory name under the sweep folder
    setting: dict[str, str]  # axis -> label, in axis order; the report's varied columns
    seed: int
    preset: str
    overrides: list[str]  # everything after the preset, in the order applied
    config: dict[str, Any] = field(repr=False, default_factory=dict)  # resolved, as written to config.yaml

    @property
    def setting_name(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.setting.items()) or "base"


@dataclass
class Spec:
    name: str
    path: Path
    preset: str
    seeds: list[int]
    overrides: list[str]
    trials: list[Trial]
    slurm: dict[str, Any]
    raw: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        """Hash of what the trials train; the same sweep folder may only hold the same trials."""
        payload = [(t.name, t.preset, t.overrides) for t in self.trials]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


def _fail(path: Path, message: str) -> GankitError:
    return GankitError(f"sweep spec {path}: {message}")


def _label(value: Any) -> str:
    text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").strip()


def _override_value(value: Any) -> str:
    # The value as a `key=value` override reads it back (YAML), so [cfid, cis] stays a list.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return yaml.safe_dump(value, default_flow_style=True).strip()


def _axis_choices(path: Path, axis: str, values: Any) -> list[tuple[str, str | None, list[str]]]:
    """(label, preset or None, overrides) for each value of one grid axis."""
    if isinstance(values, dict):  # a named axis: label -> overrides
        if not values:
            raise _fail(path, f"grid axis '{axis}' has no values; give it at least one.")
        out = []
        for label, item in values.items():
            preset, overrides = None, item
            if isinstance(item, dict):
                unknown = set(item) - {"preset", "overrides"}
                if unknown:
                    raise _fail(path, f"grid value '{axis}: {label}' may hold preset and overrides, "
                                      f"not {sorted(unknown)[0]}.")
                preset, overrides = item.get("preset"), item.get("overrides") or []
            if overrides is None:
                overrides = []
            if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
                raise _fail(path, f"grid value '{axis}: {label}' must be a list of overrides such as [sng, acml=2].")
            out.append((_label(label), preset, list(overrides)))
        return out
    if not isinstance(values, list) or not values:
        raise _fail(path, f"grid axis '{axis}' needs a non-empty list of values, such as {axis}: [a, b].")
    if axis == "preset":
        return [(str(v), str(v), []) for v in values]
    return [(_label(v), None, [f"{axis}={_override_value(v)}"]) for v in values]


def _name(setting: dict[str, str], seed: int) -> str:
    parts = [f"{k}={v}" for k, v in setting.items()] + [f"seed={seed}"]
    return _SAFE.sub("_", ",".join(parts))


def check_names(config: dict[str, Any]) -> None:
    """Registry names are checked when a run builds its parts; a sweep checks them all up front,
    so `loss.name=hingee` fails now rather than in trial 17 an hour from now."""
    from gankit.augment import AUGMENTS
    from gankit.data import DATASETS
    from gankit.latent import PRIORS
    from gankit.losses import LOSSES
    from gankit.metrics import METRICS
    from gankit.nets import MODELS
    from gankit.penalties import PENALTIES

    for registry, names in ((DATASETS, [config["data"]["name"]]), (MODELS, [config["model"]["name"]]),
                            (PRIORS, [config["model"]["latent"]]), (LOSSES, [config["loss"]["name"]]),
                            (PENALTIES, config["loss"]["penalties"]), (AUGMENTS, [config["train"]["augment"]]),
                            (METRICS, config["eval"]["metrics"])):
        for name in names:
            registry.get(name)


def load_spec(path: Path) -> Spec:
    """Read, check and expand a spec; every trial's config is resolved (and so validated) here."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise GankitError(f"no sweep spec at {path}; pass a YAML file such as studies/ablation-mnist.yaml.") from None
    except (OSError, yaml.YAMLError) as exc:
        raise GankitError(f"cannot read sweep spec {path} ({type(exc).__name__}); fix its YAML.") from None
    if not isinstance(raw, dict):
        raise _fail(path, "must be a mapping with preset, grid and seeds; see studies/ for examples.")
    for key in raw:
        if key not in SPEC_KEYS:
            raise _fail(path, f"unknown key '{key}'{did_you_mean(str(key), SPEC_KEYS)}")
    name = str(raw.get("name") or path.stem)
    if _SAFE.search(name) or name.startswith("."):
        raise _fail(path, f"name '{name}' must be a plain folder name (letters, digits, . _ + - =).")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds):
        raise _fail(path, "seeds must be a non-empty list of integers, such as [0, 1, 2].")
    if len(set(seeds)) != len(seeds):
        raise _fail(path, f"seeds {seeds} repeat a seed; list each once.")
    shared = raw.get("overrides") or []
    if not isinstance(shared, list) or not all(isinstance(o, str) for o in shared):
        raise _fail(path, "overrides must be a list of key=value strings.")
    slurm = raw.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise _fail(path, f"slurm must be a mapping of {', '.join(SLURM_KEYS)}.")
    for key in slurm:
        if key not in SLURM_KEYS:
            raise _fail(path, f"unknown slurm key '{key}'{did_you_mean(str(key), SLURM_KEYS)}")

    grid = raw.get("grid")
    blocks = grid if isinstance(grid, list) else [grid] if isinstance(grid, dict) else None
    if not blocks or not all(isinstance(b, dict) and b for b in blocks):
        raise _fail(path, "the grid is empty; give it at least one axis, such as `grid: {loss.name: [hinge, lsgan]}`.")
    base = raw.get("preset")
    trials: dict[str, Trial] = {}
    for block in blocks:
        axes = [(str(axis), _axis_choices(path, str(axis), values)) for axis, values in block.items()]
        for combo in itertools.product(*(choices for _, choices in axes)):
            presets = [p for _, p, _ in combo if p]
            if len(presets) > 1:
                raise _fail(path, f"one trial would get two presets ({presets[0]}, {presets[1]}); "
                                  "let only one axis name presets.")
            preset = presets[0] if presets else base
            if not preset:
                raise _fail(path, "name a base preset (`preset: dcgan-mnist`) or a preset axis in the grid.")
            setting = {axis: label for (axis, _), (label, _, _) in zip(axes, combo, strict=True)}
            for seed in seeds:
                overrides = [*shared, *(o for _, _, ovs in combo for o in ovs), f"train.seed={seed}"]
                trial = Trial(_name(setting, seed), setting, seed, str(preset), overrides)
                trials.setdefault(trial.name, trial)  # blocks may share a setting; it runs once
    for trial in trials.values():
        try:
            trial.config = config_lib.to_dict(config_lib.resolve(trial.preset, trial.overrides))
            check_names(trial.config)
        except GankitError as exc:
            raise _fail(path, f"trial {trial.name}: {exc}") from None
    return Spec(name, path, str(base or ""), seeds, shared, list(trials.values()), slurm, raw)
