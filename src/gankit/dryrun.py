"""`gankit train PRESET ... --dry-run`: every check training makes before its first step, and no step.

A run that would stop at step 0 (a misspelt metric, a model that cannot make 48 px images, a
dataset that is not on disk) should stop here, in seconds, instead of after a queue wait. The
checks build what training builds, from the same registries: the dataset (its cache too,
when absent, exactly as training's first use would, so the real run then starts at once), the
networks for the dataset's shape and classes, the loss, penalties, augmentation, latent prior
and metrics, and they push one small batch through D's loss to prove the shapes fit.
"""

from __future__ import annotations

import yaml

from gankit import config as config_lib
from gankit.config import Config


def check(cfg: Config) -> str:
    """The resolved config as YAML, followed by what was checked, as YAML comments."""
    import torch

    from gankit.augment import build_augment
    from gankit.data import DATASETS, build_dataset
    from gankit.data.base import require_batch
    from gankit.latent import build_prior
    from gankit.losses import Batch, build_loss
    from gankit.metrics import build_metric
    from gankit.metrics.evaluate import headline, lower_is_better
    from gankit.nets import MODELS, build_nets
    from gankit.penalties import build_penalties

    # Names first: they fail fastest, before any data is read.
    DATASETS.get(cfg.data.name)
    MODELS.get(cfg.model.name)
    loss = build_loss(cfg.loss)
    penalties = build_penalties(cfg.loss)
    prior = build_prior(cfg.model)
    for name in cfg.eval.metrics:
        build_metric(name)
    watched = [cfg.eval.best_metric or headline(cfg.eval.metrics[0])] if cfg.eval.metrics else []
    for scalar in watched + list(cfg.eval.collapse_factors):
        lower_is_better(scalar)

    dataset = build_dataset(cfg.data)
    cfg = config_lib.steps_from_epochs(cfg, dataset)
    size = len(dataset) if hasattr(dataset, "__len__") else None
    if size is not None:
        require_batch(size, cfg.train.batch_size)
    shape, classes = tuple(dataset.shape), int(dataset.num_classes)
    nets = build_nets(cfg.model, shape, classes)
    augment = build_augment(cfg.train, shape)

    # One small batch through G and D's loss: a shape the model cannot make fails here.
    n = 2 * max(1, cfg.model.pack if cfg.model.name == "pacgan" else 1)
    generator = torch.Generator().manual_seed(0)
    z = prior.sample(n, generator, torch.device("cpu"))
    labels = torch.arange(n) % classes if classes else None
    real, _ = dataset.sample(n, generator) if not hasattr(dataset, "__len__") else (None, None)
    with torch.no_grad():
        fake = nets.G(z, labels)
    if tuple(fake.shape[1:]) != shape:
        raise AssertionError(f"G made {tuple(fake.shape[1:])} for data of shape {shape}")  # a model bug, not input
    real = fake.clone() if real is None else real
    nets.G.eval(), nets.D.eval()  # BatchNorm statistics of two samples say nothing; the shapes do
    terms = loss.discriminator(nets, Batch(real=augment(real), fake=augment(fake), z=z, labels=labels))
    for penalty in penalties:
        terms |= penalty(nets, Batch(real=real, fake=fake, z=z, labels=labels), 0)

    def params(module: torch.nn.Module) -> str:
        return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}M"

    images = f"{size:,} images" if size is not None else "sampled afresh every batch"
    per_step = cfg.train.batch_size * cfg.train.gradient_accumulation * cfg.train.discriminator_steps
    lines = [
        "# dry run: every check passed; nothing was trained",
        f"# dataset {cfg.data.name} ({cfg.data.split}): {images}, shape {list(shape)}, {classes} classes",
        f"# model {cfg.model.name}: G {params(nets.G)} and D {params(nets.D)} parameters; "
        f"D's loss terms {', '.join(sorted(terms))} are finite: {all(torch.isfinite(v).all() for v in terms.values())}",
        f"# {cfg.train.steps:,} steps of {per_step} real images = {cfg.train.steps * per_step / 1000:,.1f} kimg"
        + (f" ({cfg.train.epochs:g} epochs)" if cfg.train.epochs else ""),
        f"# metrics: {', '.join(cfg.eval.metrics) or 'none'}"
        + (f"; collapse watched on {', '.join(dict.fromkeys(watched + list(cfg.eval.collapse_factors)))}"
           if watched else ""),
    ]
    return yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False) + "\n".join(lines) + "\n"
