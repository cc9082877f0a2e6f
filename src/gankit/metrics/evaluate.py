"""Scores with their protocol: generated samples, backbones, cached reference statistics, records.

`Evaluation` holds one set of generated samples and hands metrics what they ask for (features
under a backbone, reference statistics, the dataset's modes), computing each thing once.
`score` runs metrics and returns one record per scalar, each carrying the protocol fields that
make it comparable (issue 4): n generated, n reference, reference split, backbone, weights hash,
resize method and seconds; `evaluate_checkpoint` adds network, step, kimg and seed, and appends
the records to RUN_DIR/metrics.jsonl.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from gankit import config as config_lib
from gankit.checkpoint import resolve_checkpoint
from gankit.config import DataConfig, EvalConfig
from gankit.data.base import to_unit_range
from gankit.errors import GankitError
from gankit.metrics import build_metric, require_samples
from gankit.metrics.backbone import Backbone
from gankit.metrics.stats import FeatureStats, feature_statistics
from gankit.utils import append_jsonl, atomic_write

# How real images become backbone input; part of the reference cache key.
PREPROCESSING = "uint8 -> [-1, 1] -> uint8 (round); grey -> RGB by repetition for Inception"
# How the n reference images are chosen; part of the cache key too.
SELECTION = "first n of torch.randperm(len, generator seed 0)"


def cache_root(eval_cfg: EvalConfig) -> Path:
    if eval_cfg.cache_dir:
        return Path(eval_cfg.cache_dir)
    return Path(os.environ.get("GANKIT_CACHE", Path.home() / ".cache" / "gankit"))


def real_images(dataset, n: int) -> torch.Tensor:
    """n real images (n, C, H, W) in [-1, 1], a seeded random subset (all of them when n >= len)."""
    images = getattr(dataset, "images", None)
    if images is None:
        raise GankitError("this dataset keeps no images in memory to build reference statistics from; "
                          "use an image dataset such as mnist5k, mnist or cifar10.")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n]
    return to_unit_range(images[order])


@dataclass
class Reference:
    """Reference (real) features under one backbone, and their statistics."""

    pool: torch.Tensor  # (n, D) float32
    logits: torch.Tensor  # (n, K) float32
    stats: FeatureStats
    key: dict[str, Any]

    @property
    def n(self) -> int:
        return len(self.pool)


def reference_key(data: DataConfig, backbone: Backbone, n: int) -> dict[str, Any]:
    """Everything the reference statistics depend on; a cached file is reused only on equality."""
    dataset = {k: v for k, v in config_lib.to_dict(replace(data)).items()
               if k not in ("root", "download", "in_memory_budget_mb")}
    return {"dataset": dataset, "split": data.split, "resolution": data.resolution, "channels": data.channels,
            "preprocessing": PREPROCESSING, "selection": SELECTION, "backbone": backbone.name,
            "weights_hash": backbone.weights_hash, "resize": backbone.resize, "n": n}


def load_or_compute_reference(data: DataConfig, backbone: Backbone, n: int, cache: Path,
                              dataset=None) -> Reference:
    """Reference features for `data` (its split) under `backbone`, from the disk cache when the key matches."""
    from gankit.data import build_dataset

    dataset = dataset if dataset is not None else build_dataset(data)
    n = min(n, len(dataset.images)) if getattr(dataset, "images", None) is not None else n
    key = reference_key(data, backbone, n)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache) / "refstats" / f"{data.name}-{data.split}-{backbone.name.replace(':', '-')}-{digest}.pt"
    if path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if json.loads(payload["key"]) == key:  # a hash collision or a hand-edited file never passes
                stats = FeatureStats(payload["mean"].numpy(), payload["cov"].numpy(), int(payload["n"]))
                return Reference(payload["pool"], payload["logits"], stats, key)
        except Exception:  # an unreadable cache file is recomputed and replaced, never trusted
            pass
    features = backbone(real_images(dataset, n))
    stats = feature_statistics(features["pool"])
    payload = {"key": json.dumps(key, sort_keys=True), "pool": features["pool"], "logits": features["logits"],
               "mean": torch.from_numpy(stats.mean), "cov": torch.from_numpy(stats.cov), "n": n}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return Reference(features["pool"], features["logits"], stats, key)


def at_data_resolution(fake: torch.Tensor, data: DataConfig) -> torch.Tensor:
    """A growing G's (PGGAN's) samples below the data resolution, nearest-upsampled to it: scored
    as the picture it would show at full size, so scores before and after a growth compare."""
    if fake.dim() != 4 or fake.shape[-1] >= data.resolution:
        return fake
    return torch.nn.functional.interpolate(fake, size=(data.resolution, data.resolution), mode="nearest")


def build_backbone(name: str, data: DataConfig, eval_cfg: EvalConfig, device: torch.device | str) -> Backbone:
    """The feature extractor `name` for samples of `data`: Inception (its weights fetched to the torch
    cache when not given), the dataset's classifier, or Stacked MNIST's digit classifier."""
    from gankit.metrics.classifier import ClassifierBackbone, default_classifier_path

    device = torch.device(device)
    if name == "inception":
        from gankit.metrics.inception import InceptionBackbone

        return InceptionBackbone(eval_cfg.inception_weights or None, device)
    if name == "classifier":
        path = eval_cfg.classifier or default_classifier_path(cache_root(eval_cfg), data)
        backbone = ClassifierBackbone(path, device)
        backbone.check_input(data.channels)
        return backbone
    if name == "digit-classifier":  # Stacked MNIST: an MNIST classifier applied per channel
        if eval_cfg.classifier:
            return ClassifierBackbone(eval_cfg.classifier, device)
        for source in ("mnist", "mnist5k"):
            path = default_classifier_path(cache_root(eval_cfg), replace(data, name=source, channels=1))
            if path.is_file():
                return ClassifierBackbone(path, device)
        raise GankitError("Stacked-MNIST modes need an MNIST digit classifier; train one with "
                          f"`gankit classifier train --data mnist --resolution {data.resolution}` "
                          "or set eval.classifier to its file.")
    raise ValueError(f"unknown backbone {name}")


# Backbones built from a file the user makes (`gankit classifier train`), which nothing can fetch.
USER_MADE_BACKBONES = ("classifier", "digit-classifier")


def build_user_made_backbones(metrics: list[str], data_by_set: dict[str, DataConfig], eval_cfg: EvalConfig,
                              device: torch.device | str, shared: dict) -> None:
    """Before training: load each classifier the metrics will use into `shared` (as `score_sets`
    keys it), so a missing or unfit one stops the run at its start, not after hours of training.
    Inception's weights are found (fetched to the torch cache when missing) for the same reason;
    the network itself is loaded at first use."""
    used = {build_metric(name).backbone for name in metrics}
    if "inception" in used:
        from gankit.metrics.inception import find_weights

        find_weights(eval_cfg.inception_weights or None)
    needed = used & set(USER_MADE_BACKBONES)
    for set_name, data in data_by_set.items():
        backbones = shared.setdefault(set_name, {}).setdefault("backbones", {})
        for name in sorted(needed):
            backbones[name] = build_backbone(name, data, eval_cfg, device)


class Evaluation:
    """One set of generated samples and everything metrics may ask about it, each computed once."""

    def __init__(self, fake: torch.Tensor, data: DataConfig, eval_cfg: EvalConfig,
                 device: torch.device | str = "cpu", dataset=None, shared: dict | None = None,
                 labels: torch.Tensor | None = None):
        self.fake = at_data_resolution(fake.float().cpu(), data)  # (N, *data_shape), G's range
        self.labels = labels  # (N,) the class each sample should show (conditional or translated), or None
        self.data = data  # the run's data config; the reference uses eval_cfg.reference_split
        self.eval_cfg = eval_cfg
        self.device = torch.device(device)
        self.dataset = dataset  # the run's dataset when at hand (2-D mixtures: the modes)
        self.used: dict[str, Any] = {}  # protocol of the metric being computed
        # Backbones and references outlive one evaluation when a caller (the training hook) shares them.
        shared = shared if shared is not None else {}
        self._backbones: dict[str, Backbone] = shared.setdefault("backbones", {})
        self._references: dict[str, Reference] = shared.setdefault("references", {})
        self._fake_features: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def n(self) -> int:
        return len(self.fake)

    def run_dataset(self):
        if self.dataset is None:
            from gankit.data import build_dataset

            self.dataset = build_dataset(self.data)
        return self.dataset

    def require_images(self, metric: str) -> None:
        if self.fake.dim() != 4:
            raise GankitError(f"{metric} measures images, but this run makes {self.fake.shape[1]}-D points; "
                              "use the modes metric for 2-D data.")

    def backbone(self, name: str) -> Backbone:
        if name not in self._backbones:
            self._backbones[name] = build_backbone(name, self.data, self.eval_cfg, self.device)
        backbone = self._backbones[name]
        self.used.update(backbone=backbone.name, weights_hash=backbone.weights_hash, resize=backbone.resize)
        return backbone

    def fake_features(self, name: str) -> dict[str, torch.Tensor]:
        backbone = self.backbone(name)
        if name not in self._fake_features:
            self._fake_features[name] = backbone(self.fake)
        return self._fake_features[name]

    def reference(self, name: str) -> Reference:
        backbone = self.backbone(name)
        if name not in self._references:
            data = replace(self.data, split=self.eval_cfg.reference_split)
            n = self.eval_cfg.num_reference or self.eval_cfg.num_samples
            self._references[name] = load_or_compute_reference(data, backbone, n, cache_root(self.eval_cfg))
        reference = self._references[name]
        self.used.update(n_reference=reference.n, reference_split=self.eval_cfg.reference_split)
        return reference


def score(ev: Evaluation, metrics: list[str]) -> list[dict[str, Any]]:
    """Run each named metric; one record per scalar with the protocol of how it was measured."""
    builders = [(name, build_metric(name)) for name in metrics]  # unknown names fail before any work
    records = []
    for name, metric in builders:
        ev.used = {}
        started = time.perf_counter()
        values = metric(ev)
        seconds = time.perf_counter() - started
        for scalar, value in values.items():
            records.append({
                "metric": scalar, "value": value, "group": name, "n_generated": ev.n,
                "n_reference": ev.used.get("n_reference"), "reference_split": ev.used.get("reference_split"),
                "backbone": ev.used.get("backbone"), "weights_hash": ev.used.get("weights_hash"),
                "resize": ev.used.get("resize"), "seconds": round(seconds, 3), **metric.details(ev),
            })
    return records


def score_samples(ev: Evaluation, metrics: list[str], checkpoint: str, step: int, images_seen: int,
                  source: str) -> list[dict[str, Any]]:
    """`score`'s records, each also saying which samples were scored: network, checkpoint, step,
    kimg, seed, dataset, and whether training or `gankit eval` scored them."""
    context = {"network": ev.eval_cfg.network, "checkpoint": checkpoint, "checkpoint_step": step,
               "kimg": images_seen / 1000, "seed": ev.eval_cfg.seed, "dataset": ev.data.name, "source": source,
               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return [{**record, **context} for record in score(ev, metrics)]


def headline(metric_name: str) -> str:
    """The scalar a registry name stands for when picking the best checkpoint: pr -> precision."""
    return build_metric(metric_name).headline


def lower_is_better(scalar: str) -> bool:
    from gankit.metrics import METRICS

    for name in METRICS.list():
        metric = METRICS.build(name)
        if scalar in metric.lower_is_better:
            return metric.lower_is_better[scalar]
    if "/" in scalar:  # a translation run's per-direction score, such as kid/AtoB
        return lower_is_better(scalar.split("/")[0])
    raise GankitError(f"'{scalar}' is not a score any metric produces; pick one such as fid, cfid, is or kid.")


def score_sets(sets, metrics: list[str], eval_cfg: EvalConfig, device, checkpoint: str, step: int,
               images_seen: int, source: str, dataset=None, shared: dict | None = None) -> list[dict[str, Any]]:
    """`score_samples` over an objective's evaluation sets (one for a noise model; one per
    direction for a translation model, whose scores are named like `kid/AtoB`)."""
    shared = shared if shared is not None else {}
    records = []
    for s in sets:
        ev = Evaluation(s.fake, s.data, eval_cfg, device, dataset=None if s.name else dataset,
                        shared=shared.setdefault(s.name, {}), labels=s.labels)
        for record in score_samples(ev, metrics, checkpoint, step, images_seen, source):
            if s.name:
                record.update(metric=f"{record['metric']}/{s.name}", direction=s.name)
            records.append(record)
    return records


# ---------------------------------------------------------------------------------------------
# Samples from generators, and whole-checkpoint evaluation (the `gankit eval` command).


def evaluate_checkpoint(run_dir: Path, metrics: list[str] | None, n: int | None = None, checkpoint: str = "latest",
                        reference_split: str | None = None, overrides: dict[str, Any] | None = None,
                        write: bool = True) -> list[dict[str, Any]]:
    """Score a run's checkpoint; append the records to RUN_DIR/metrics.jsonl (unless write=False)."""
    from gankit.checkpoint import load_checkpoint, load_generator
    from gankit.data import build_dataset

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GankitError(f"run directory {run_dir} does not exist; pass a directory made by `gankit train`.")
    path = resolve_checkpoint(run_dir, checkpoint)
    payload = load_checkpoint(path)
    cfg = config_lib.from_dict(payload["config"])
    changes = dict(overrides or {})
    if n is not None:
        changes["num_samples"] = n
    if reference_split is not None:
        changes["reference_split"] = reference_split
    values = config_lib.to_dict(cfg)
    values["eval"].update(changes)
    eval_cfg = config_lib.from_dict(values).eval  # checked like any config: a bad value is one sentence
    loaded = load_generator(path, eval_cfg.network, payload)
    dataset = build_dataset(cfg.data)
    if metrics is None:  # the run's own metrics, else the standard set for its kind of model and data
        metrics = eval_cfg.metrics or loaded.objective.default_metrics()
    # Also fails on an unknown name, before any sampling.
    require_samples(metrics, eval_cfg.num_samples, "--n" if n is not None else "the run's eval.num_samples")
    sets = loaded.objective.evaluation_sets(loaded.G, eval_cfg.num_samples, eval_cfg.seed, loaded.device)
    records = score_sets(sets, metrics, eval_cfg, loaded.device, path.name, int(payload["step"]),
                         int(payload["images_seen"]), "gankit eval", dataset=dataset)
    if write:
        for record in records:
            append_jsonl(run_dir / "metrics.jsonl", record)
    return records


def format_table(records: list[dict[str, Any]]) -> str:
    """A plain table: metric, value, n gen, n ref, split, backbone, seconds."""
    header = ("metric", "value", "n_gen", "n_ref", "ref", "backbone", "weights", "seconds")
    rows = [header]
    for r in records:
        value = r["value"]
        rows.append((r["metric"], f"{value:.4f}" if isinstance(value, float) else str(value), str(r["n_generated"]),
                     str(r["n_reference"] or "-"), r["reference_split"] or "-", r["backbone"] or "-",
                     r["weights_hash"] or "-", f"{r['seconds']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
