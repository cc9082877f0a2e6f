"""Short override names that users of the seed repositories already type.

`gankit train dcgan-celeba sng snd acml=2 spd=2 rtype=tnormal aug_policy=diff_aug cg=hinge`
means the same as the full keys. Each alias maps to one documented config key, and a few
seed values map to gankit's registry names; everything else passes through unchanged, so the
full keys stay the single source of truth (README, "Seed flags").
"""

from __future__ import annotations

KEYS = {
    "sng": "model.spectral_norm_G",  # -sng
    "snd": "model.spectral_norm_D",  # -snd
    "acml": "train.gradient_accumulation",  # -acml=2
    "spd": "train.discriminator_steps",  # -spd=2 (steps per D: D updates per G update)
    "rtype": "model.latent",  # --rtype=tnormal
    "aug_policy": "train.augment",  # --aug_policy=diff_aug
    "cg": "loss.name",  # -cg=hinge (seed 001 names G's and D's criterion apart; gankit pairs them)
    "cd": "loss.name",
    "model": "model.name",  # --model dcgan
    "batch_size": "train.batch_size",
    "lr": ("train.lr_G", "train.lr_D"),  # --lr 5e-5 sets both
}
FLAGS = {"sng", "snd"}  # bare words that mean `=true`

VALUES = {
    "model.latent": {"tnormal": "truncnormal"},
    "train.augment": {"diff_aug": "diffaugment"},
    "loss.name": {"bce": "nonsaturating", "ls": "lsgan", "leastsquares": "lsgan", "wloss": "wasserstein",
                  "wgan": "wasserstein"},
}


def expand(item: str) -> list[str]:
    """'spd=2' -> ['train.discriminator_steps=2']; 'sng' -> ['model.spectral_norm_G=true']."""
    item = item.lstrip("-") if item.lstrip("-").split("=", 1)[0] in KEYS else item
    if item in FLAGS:
        item += "=true"
    if "=" not in item:
        return [item]
    key, value = item.split("=", 1)
    if key not in KEYS:
        return [item]
    targets = KEYS[key] if isinstance(KEYS[key], tuple) else (KEYS[key],)
    return [f"{t}={VALUES.get(t, {}).get(value, value)}" for t in targets]
