from __future__ import annotations

import pytest
import yaml

from gankit import config as config_lib
from gankit.errors import GankitError


def test_presets_are_deltas_that_resolve():
    names = [name for name, _ in config_lib.list_presets()]
    assert {"gan-ring8", "gan-grid25", "dcgan-mnist", "dcgan-mnist-full"} <= set(names)
    for name, description in config_lib.list_presets():
        assert description, f"preset {name} needs a one-line description"
        cfg = config_lib.resolve(name)
        assert cfg.preset == name


def test_overrides_are_typed():
    cfg = config_lib.resolve("gan-ring8", ["train.steps=7", "train.lr_G=1e-3", "train.betas=[0.0, 0.9]",
                                           "data.std=0.5", "eval.metrics=fid,is", "train.channels_last=false"])
    assert cfg.train.steps == 7 and isinstance(cfg.train.steps, int)
    assert cfg.train.lr_G == 1e-3 and isinstance(cfg.train.lr_G, float)
    assert cfg.train.betas == [0.0, 0.9]
    assert cfg.data.std == 0.5
    assert cfg.eval.metrics == ["fid", "is"]
    assert cfg.train.channels_last is False
    # An int widens to a float field.
    assert config_lib.resolve("gan-ring8", ["train.lr_D=1"]).train.lr_D == 1.0


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("train.stpes=5", ["unknown config key 'train.stpes'", "train.steps"]),
        ("z_dim=5", ["unknown config key 'z_dim'", "model.z_dim"]),  # steps=5 is seed 001's --steps
        ("train.steps=abc", ["train.steps must be int"]),
        ("train.steps=1.5", ["train.steps must be int"]),
        ("train.steps=true", ["train.steps must be int"]),
        ("train.steps=0", ["train.steps must be positive"]),
        ("train.optimizer=sgd", ["adam or rmsprop"]),
        ("train.seed", ["key=value"]),
        ("data.split=val", ["train or test"]),
    ],
)
def test_bad_overrides_name_the_problem(override, fragments):
    with pytest.raises(GankitError) as info:
        config_lib.resolve("gan-ring8", [override])
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(GankitError, match="did you mean 'dcgan-mnist'"):
        config_lib.resolve("dcgan-mnst")


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = config_lib.resolve("dcgan-mnist", ["train.steps=3"])
    config_lib.save(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["steps"] == 3
    assert config_lib.load(tmp_path / "config.yaml") == cfg


def test_required_train_keys_exist():
    keys = set(config_lib.valid_keys())
    assert {"train.steps", "train.seed", "train.batch_size", "train.checkpoint_every"} <= keys
