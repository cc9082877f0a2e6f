"""`gankit data prepare`: build a dataset's HDF5 cache ahead of training, as training would."""

from __future__ import annotations

from pathlib import Path

from gankit.errors import GankitError, closest


def prepare(name: str, resolution: int | None = None, overrides: list[str] = ()) -> list[Path]:
    """Build (or check) the caches `name` needs; `name` is a dataset, or a preset whose data to use.

    Overrides are data keys, with or without the `data.` prefix (`path=faces`, `data.channels=3`).
    Returns the cache files, empty for datasets read without one (ring8, grid25, mnist5k).
    """
    from gankit import config as config_lib
    from gankit.data import build_dataset, cache, list_datasets

    keys = [item if item.startswith("data.") else f"data.{item}" for item in overrides]
    if resolution is not None:
        keys.append(f"data.resolution={resolution}")
    if name in list_datasets():
        cfg = config_lib.with_overrides(config_lib.Config(), [f"data.name={name}", *keys])
    elif name in [preset for preset, _ in config_lib.list_presets()]:
        cfg = config_lib.resolve(name, keys)
    else:
        match = closest(name, list_datasets() + [preset for preset, _ in config_lib.list_presets()])
        hint = f"did you mean '{match}'? " if match else ""
        raise GankitError(f"'{name}' is neither a dataset nor a preset; {hint}"
                          "`gankit data list` and `gankit presets` list them.")
    cache.used.clear()
    build_dataset(cfg.data)
    return list(dict.fromkeys(cache.used))
