"""The seed repositories' command-line flags, typed exactly as their READMEs type them.

Seed 001 (`python main.py celeba -sng -snd --ema -acml=2 -spd=2 --rtype=tnormal
--aug_policy=diff_aug -cg=hinge -cd=hinge`) and seed 000 (`run.py --model dcgan --epochs 300
--batch_size 64 --lr 5e-5 --log_steps 10`) both used argparse, so their users type one or two
dashes, `=value` or a separate value, and abbreviations (seed 001's own README types
`--aug_polic=diff_aug`, which argparse accepts as a unique prefix of `--aug_policy`).

Two layers, so the full config keys stay the single source of truth (README, "Seed flags"):
- `rewrite_train_args` turns dashed flags into bare `name=value` words before click parses
  them (click would read `-cd=hinge` as `-c -d -= -h ...` and print help);
- `expand` maps each bare word (`spd=2`, `sng`, `ema`) onto its config key(s), with a few seed
  values renamed to gankit's registry names. `config.parse_overrides` calls it for every override.
"""

from __future__ import annotations

from gankit.errors import GankitError, closest

KEYS = {
    "sng": "model.spectral_norm_G",  # -sng
    "snd": "model.spectral_norm_D",  # -snd
    "ema": "eval.network",  # --ema: score and sample the EMA generator (gankit always keeps one)
    "acml": "train.gradient_accumulation",  # -acml=2
    "spd": "train.discriminator_steps",  # -spd=2 (steps per D: D updates per G update)
    "rtype": "model.latent",  # --rtype=tnormal
    "aug_policy": "train.augment",  # --aug_policy=diff_aug
    "cg": "loss.generator",  # -cg=hinge: G's criterion (seed 001 names G's and D's apart)
    "cd": "loss.name",  # -cd=hinge: D's criterion, and G's too unless cg names another
    "model": "model.name",  # --model dcgan
    "epochs": "train.epochs",  # --epochs 300: passes over the dataset (seed 000)
    "steps": "train.steps",  # --steps=100000 (seed 001)
    "batch_size": "train.batch_size",  # --batch_size 64
    "lr": ("train.lr_G", "train.lr_D"),  # --lr 5e-5 sets both
    "log_steps": "train.log_every",  # --log_steps 10 (seed 000)
}
FLAGS = {"sng": "true", "snd": "true", "ema": "G_ema"}  # bare words and the value they stand for

VALUES = {
    "model.latent": {"tnormal": "truncnormal"},
    "train.augment": {"diff_aug": "diffaugment"},
    "loss.name": {"bce": "nonsaturating", "ls": "lsgan", "leastsquares": "lsgan", "wloss": "wasserstein",
                  "wgan": "wasserstein"},
}
VALUES["loss.generator"] = VALUES["loss.name"]

# The `gankit train` options click parses itself; a dashed word that is none of these and no
# seed flag is refused with the nearest supported flag named.
OWN_OPTIONS = {"--out": True, "--name": True, "--resume": True, "--dry-run": False, "--help": False, "-h": False}


def expand(item: str) -> list[str]:
    """'spd=2' -> ['train.discriminator_steps=2']; 'sng' -> ['model.spectral_norm_G=true']."""
    item = item.lstrip("-") if item.lstrip("-").split("=", 1)[0] in KEYS else item
    if item in FLAGS:
        item += "=" + FLAGS[item]
    if "=" not in item:
        return [item]
    key, value = item.split("=", 1)
    if key not in KEYS:
        return [item]
    targets = KEYS[key] if isinstance(KEYS[key], tuple) else (KEYS[key],)
    return [f"{t}={VALUES.get(t, {}).get(value, value)}" for t in targets]


def _seed_flag(name: str) -> str | None:
    """The seed flag `name` stands for, exactly or as argparse's unique prefix (aug_polic)."""
    if name in KEYS:
        return name
    matches = [flag for flag in KEYS if flag.startswith(name)] if len(name) >= 3 else []
    return matches[0] if len(matches) == 1 else None


def _nearest(word: str) -> str:
    flag = closest(word.lstrip("-"), list(KEYS))
    own = closest(word, list(OWN_OPTIONS))
    candidates = [c for c in (f"--{flag}" if flag else None, own) if c]
    return closest(word, candidates) or (candidates[0] if candidates else "--help")


def rewrite_train_args(args: list[str]) -> list[str]:
    """`gankit train`'s words with every dashed seed flag turned into a bare `name=value` word.

    ['dcgan-celeba', '-sng', '--model', 'dcgan', '-cd=hinge', '--out', 'runs']
    -> ['dcgan-celeba', 'sng', 'model=dcgan', 'cd=hinge', '--out', 'runs']
    """
    out: list[str] = []
    words = iter(args)
    for word in words:
        if not word.startswith("-") or word == "-" or _is_number(word):
            out.append(word)
            continue
        if word == "--":
            out += [word, *words]
            break
        option = word.split("=", 1)[0]
        if option in OWN_OPTIONS:
            out.append(word)
            if OWN_OPTIONS[option] and "=" not in word:
                out.append(next(words, ""))  # its value, whatever it looks like
            continue
        name, _, value = word.lstrip("-").partition("=")
        flag = _seed_flag(name)
        if flag is None:
            raise GankitError(f"gankit train has no flag '{option}'; the nearest supported one is "
                              f"'{_nearest(option)}' (README, \"Seed flags\", lists them all).")
        if "=" not in word and flag not in FLAGS:
            value = next(words, None)
            if value is None or (value.startswith("-") and not _is_number(value)):
                raise GankitError(f"{option} needs a value, such as {option} {_example(flag)}.")
        out.append(flag if "=" not in word and flag in FLAGS else f"{flag}={value}")
    return out


def _is_number(word: str) -> bool:
    try:
        float(word)
        return True
    except ValueError:
        return False


def _example(flag: str) -> str:
    return {"model": "dcgan", "rtype": "tnormal", "aug_policy": "diff_aug", "cg": "hinge", "cd": "hinge",
            "lr": "5e-5", "epochs": "300", "steps": "100000"}.get(flag, "2")


def seed_model(preset: str, overrides: list[str]) -> list[str]:
    """Seed 000's `--model X` named a whole recipe (WGAN: its loss, clipping and RMSProp), where
    gankit's `model.name` names only the network. Keep the word when it means the same thing
    here, drop it when the preset already is that recipe, and refuse it when a different preset
    is what the user meant, rather than train something they did not ask for."""
    words = [w for w in overrides if w.startswith(("model=", "--model="))]
    if not words:
        return overrides
    from gankit.config import list_presets, preset_values
    from gankit.nets import MODELS

    presets = [name for name, _ in list_presets()]
    own_model = preset_values(preset).get("model", {}).get("name") if preset in presets else None
    out = list(overrides)
    for word in words:
        value = word.split("=", 1)[1]
        suffixes = [preset[i + 1:] for i, c in enumerate(preset) if c == "-"]
        recipe = next((f"{value}-{s}" for s in suffixes if f"{value}-{s}" in presets), None)
        if value == own_model or recipe == preset:
            out.remove(word)  # already what the preset trains
        elif recipe is not None:
            swap = f", or set model.name={value} to swap only the network" if value in MODELS else ""
            raise GankitError(f"--model {value} asks for the whole {value} recipe, which is the preset {recipe} "
                              f"here; run `gankit train {recipe} ...`{swap}.")
        elif value not in MODELS:
            others = [p for p in presets if p.startswith(value + "-")]
            where = f"train one of its presets: {', '.join(others)}" if others else "`gankit presets` lists them"
            raise GankitError(f"gankit has no model '{value}' for {preset}; {where}.")
    return out
