"""The dataset registry.

A builder takes the data config and returns a dataset object with:
- `shape`: (2,) for points, (C, H, W) for images;
- `num_classes`: 0 when unlabelled;
- `loader(batch_size, seed, device)`: an endless batch source whose position is part of a
  checkpoint (`next()`, `state_dict()`, `load_state_dict()`).

One file per family: `mixtures` (ring8, grid25), `mnist` (mnist, fashion-mnist, mnist5k),
`cifar`, `celeba`, `imagefolder`, `unpaired`, `stacked`. Everything read from disk goes through
the HDF5 cache (`cache`, `sources`), then lives in memory (`base.ImageTensors`) when it fits
`data.in_memory_budget_mb`, or streams through DataLoader workers (`stream.StreamedImages`).
`images` decodes the files of image folders.
"""

from __future__ import annotations

from gankit.registry import Registry

DATASETS: Registry = Registry("dataset")
register_dataset = DATASETS.register
get_dataset = DATASETS.get
list_datasets = DATASETS.list


def build_dataset(cfg):
    return DATASETS.build(cfg.name, cfg)


from gankit.data import celeba, cifar, digits, imagefolder, mixtures, mnist, stacked, unpaired  # noqa: E402,F401
