"""Typed, nested run configuration: defaults here, deltas in YAML presets, `key=value` overrides.

Every hyperparameter is documented where it is defined, with its unit. A preset states only
what it changes from these defaults; the resolved config is written to `RUN_DIR/config.yaml`
and is all a run needs to be resumed or reproduced.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml

from gankit.errors import GankitError, closest, did_you_mean


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise GankitError(message)


@dataclass
class DataConfig:
    name: str = "ring8"  # dataset registry name (`gankit presets` shows which preset uses what)
    root: str = "data"  # directory holding on-disk datasets such as MNIST's raw/ files
    download: bool = False  # fetch a missing dataset from the internet (torchvision's loaders)
    split: str = "train"  # train | test
    resolution: int = 28  # image side in pixels; images are resized to it
    channels: int = 1  # image channels: 1 grey, 3 RGB
    in_memory_budget_mb: int = 2048  # datasets smaller than this live on the device as one tensor
    # 2-D Gaussian mixtures (ring8, grid25)
    num_modes: int = 8  # ring: number of Gaussians evenly spaced on the circle
    radius: float = 1.0  # ring: circle radius
    grid_size: int = 5  # grid: means on a grid_size x grid_size lattice
    grid_spacing: float = 2.0  # grid: distance between neighbouring means
    std: float | None = None  # mixture component std; None = the dataset's paper value
    # Image datasets read from disk (see the README's Datasets table)
    path: str = ""  # imagefolder: folder of images; unpaired: folder with trainA/ trainB/ (testA/ testB/)
    class_labels: bool = False  # imagefolder: label each image by its top-level subfolder
    center_crop: int | None = None  # centred square cut before resizing, source px; None = celeba 108, else largest
    attributes: list[str] = field(default_factory=list)  # celeba: attributes as labels, k of them -> 2**k classes
    max_images: int = 0  # use only the first N images (sorted by file name); 0 = all
    domain: str = ""  # unpaired, digits2mnist: "" both domains (training), A or B one alone (references, classifiers)
    stacked_source: str = "mnist"  # stacked-mnist: digits from mnist or mnist5k
    stacked_size: int = 0  # stacked-mnist: 0 = fresh triples every batch; N = one fixed set of N images
    cache_dir: str = ""  # HDF5 caches; "" = DATA_ROOT/cache
    num_workers: int = -1  # DataLoader processes that decode/stream images; -1 = min(8, CPUs - 1)

    def __post_init__(self) -> None:
        _check(self.split in ("train", "test"), f"data.split must be train or test, not '{self.split}'.")
        _check(self.resolution >= 8, f"data.resolution must be at least 8 pixels, not {self.resolution}.")
        _check(self.channels in (1, 3), f"data.channels must be 1 or 3, not {self.channels}.")
        _check(self.std is None or self.std > 0, "data.std must be positive.")
        _check(self.center_crop is None or self.center_crop > 0, "data.center_crop must be positive (or null).")
        _check(self.max_images >= 0, "data.max_images must be 0 (all) or more.")
        _check(self.domain in ("", "A", "B"), f"data.domain must be A, B or empty (both), not '{self.domain}'.")
        _check(self.stacked_source in ("mnist", "mnist5k"),
               f"data.stacked_source must be mnist or mnist5k, not '{self.stacked_source}'.")
        _check(self.stacked_size >= 0, "data.stacked_size must be 0 (on the fly) or more.")
        _check(self.num_workers >= -1, "data.num_workers must be -1 (automatic), 0 (no worker processes) or more.")


@dataclass
class ModelConfig:
    name: str = "mlp"  # model registry name: a G/D pair
    z_dim: int = 64  # latent dimension
    latent: str = "normal"  # latent prior registry name
    width: int = 64  # MLP: hidden units; conv nets: channels of the highest-resolution layer
    depth: int = 3  # MLP: hidden layers in G and in D
    # The zoo's switches (README "The GAN zoo" lists the paper behind each).
    truncation: float = 2.0  # latent=truncnormal: |z_i| never exceeds this threshold
    spectral_norm_G: bool = False  # spectral norm on every conv/linear weight of G (seed's -sng)
    spectral_norm_D: bool = False  # spectral norm on every conv/linear/embedding weight of D (-snd)
    batchnorm_G: bool | None = None  # BatchNorm in G; None = the architecture's paper choice
    batchnorm_D: bool | None = None  # BatchNorm in D; None = the architecture's paper choice
    init: str = "auto"  # weight init: auto (the architecture's paper init) | dcgan | orthogonal | kaiming
    pack: int = 2  # pacgan, maxout: samples D sees at once (PacGAN's m); 1 = a plain GAN's D
    pack_inner: str = "dcgan"  # pacgan on images: the conv nets inside, dcgan | dcgan-tf (the authors' code)
    width_D: int = 0  # maxout: D hidden units, dcgan: D channels; 0 = model.width (PacGAN's toy D: 200, G: 400)
    depth_D: int = 0  # maxout: D hidden layers; 0 = model.depth (PacGAN's toy D: 3, G: 4)
    maxout_pieces: int = 5  # maxout: linear pieces each D unit takes the max of (Goodfellow 2013)
    input_scale_D: float = 1.0  # mlp, pacgan (points), maxout: D sees x * this; > 1 lets D resolve tight modes sooner
    attention_resolution: int = 16  # sagan: side in pixels of the G and D feature maps given self-attention
    max_width: int = 512  # pggan: channel cap of the low-resolution blocks (width doubles per halving up to it)
    resnet_blocks: int = 0  # cyclegan: residual blocks in each G; 0 = the paper's (9 at 256 px and up, else 6)
    # The pixel range G and D work in; gankit's data, samples and metrics stay in [-1, 1] (nets/__init__.py).
    pixel_range: list[float] = field(default_factory=lambda: [-1.0, 1.0])  # [0, 1]: DCGAN-tensorflow's pixels/255

    def __post_init__(self) -> None:
        _check(self.z_dim > 0, f"model.z_dim must be positive, not {self.z_dim}.")
        _check(self.width > 0, f"model.width must be positive, not {self.width}.")
        _check(self.depth > 0, f"model.depth must be positive, not {self.depth}.")
        _check(self.truncation > 0, f"model.truncation must be positive, not {self.truncation}.")
        _check(self.init in ("auto", "dcgan", "orthogonal", "kaiming"),
               f"model.init must be auto, dcgan, orthogonal or kaiming, not '{self.init}'.")
        _check(self.max_width > 0, f"model.max_width must be positive, not {self.max_width}.")
        _check(self.pack >= 1, f"model.pack must be 1 or more, not {self.pack}.")
        _check(self.pack_inner in ("dcgan", "dcgan-tf"),
               f"model.pack_inner must be dcgan or dcgan-tf, not '{self.pack_inner}'.")
        for key in ("width_D", "depth_D"):
            _check(getattr(self, key) >= 0, f"model.{key} must be 0 (same as G) or more, not {getattr(self, key)}.")
        _check(self.input_scale_D > 0, f"model.input_scale_D must be positive, not {self.input_scale_D}.")
        _check(self.maxout_pieces >= 1, f"model.maxout_pieces must be 1 or more, not {self.maxout_pieces}.")
        _check(self.attention_resolution >= 4,
               f"model.attention_resolution must be at least 4 pixels, not {self.attention_resolution}.")
        _check(len(self.pixel_range) == 2 and self.pixel_range[0] < self.pixel_range[1],
               f"model.pixel_range must be two numbers, low then high, such as [0, 1], not {self.pixel_range}.")
        _check(self.resnet_blocks >= 0, f"model.resnet_blocks must be 0 (automatic) or more, not {self.resnet_blocks}.")


@dataclass
class LossConfig:
    name: str = "nonsaturating"  # loss registry name: the D objective, and G's unless `generator` names another
    generator: str = ""  # G's objective when it differs from D's (seed 001's -cg); "" = the same as `name`
    clip: float = 0.01  # wasserstein: clip every D weight to [-clip, clip] after each D step; 0 = off
    penalties: list[str] = field(default_factory=list)  # penalty registry names: gp, div, r1, drift
    gp_weight: float = 10.0  # gp: lambda of WGAN-GP (Gulrajani 2017)
    drift_weight: float = 0.001  # drift: epsilon of PGGAN's eps * D(x_real)^2 (Karras 2018, app. A.1)
    div_k: float = 2.0  # div: k of WGAN-div (Wu 2018)
    div_p: float = 6.0  # div: p of WGAN-div, the power of the gradient norm
    r1_gamma: float = 10.0  # r1: gamma of R1 (Mescheder 2018); the term is gamma/2 * |grad|^2
    r1_every: int = 16  # r1: training steps between lazy R1 applications (the term is scaled by it, as StyleGAN2)
    aux_weight: float = 1.0  # acgan: weight of the auxiliary classifier's cross-entropy
    recon_weight: float = 1.0  # veegan: weight of the reconstruction cost |z - F(G(z))|^2 / (2 recon_std^2)
    recon_std: float = 1.0  # veegan: std of the reconstructor's Gaussian p(z|x) = N(F(x), recon_std^2 I)
    cycle_weight: float = 10.0  # cyclegan: lambda of the cycle-consistency L1 (Zhu 2017, eq. 3)
    identity_weight: float = 0.5  # cyclegan: identity L1 weight as a fraction of cycle_weight (paper: 0.5); 0 = off
    pool_size: int = 50  # cyclegan: fakes kept per domain in the history pool D sees; 0 = no pool

    def __post_init__(self) -> None:
        _check(self.clip >= 0, f"loss.clip must be 0 or more, not {self.clip}.")
        for key in ("gp_weight", "drift_weight", "div_k", "div_p", "r1_gamma", "r1_every", "aux_weight", "recon_weight",
                    "cycle_weight", "identity_weight", "pool_size"):
            _check(getattr(self, key) >= 0, f"loss.{key} must be 0 or more, not {getattr(self, key)}.")
        _check(self.recon_std > 0, f"loss.recon_std must be positive, not {self.recon_std}.")
        _check(self.r1_every >= 1, f"loss.r1_every must be 1 or more, not {self.r1_every}.")


@dataclass
class TrainConfig:
    steps: int = 2000  # training steps in the whole run (a step: D updates, then G updates)
    epochs: float = 0.0  # passes over the dataset (seed 000's --epochs); > 0 sets `steps` from the dataset's size
    batch_size: int = 64  # images (or points) per forward pass, over all processes (each takes its share)
    gradient_accumulation: int = 1  # batches whose gradients are summed per optimizer step
    discriminator_steps: int = 1  # D updates per G update (seed 001's -spd)
    generator_steps: int = 1  # G updates per step; later ones on new fakes (DCGAN-tensorflow's code: 2)
    optimizer: str = "adam"  # adam | rmsprop
    lr_G: float = 2e-4  # generator learning rate
    lr_D: float = 2e-4  # discriminator learning rate (TTUR: set it apart from lr_G)
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # Adam betas
    lr_schedule: str = "constant"  # constant | linear: constant, then to 0 over the run's last lr_decay_fraction
    lr_decay_fraction: float = 0.5  # linear: fraction of the run's images over which lr falls to 0 (CycleGAN: 0.5)
    ema_halflife_kimg: float = 10.0  # G_ema half-life in thousands of images; 0 = copy of G
    schedule: str = "constant"  # how the phase changes with images seen: constant | progressive (PGGAN growth)
    fade_kimg: float = 800.0  # progressive: thousands of images over which each new block fades in
    stable_kimg: float = 800.0  # progressive: thousands of images at each resolution after its fade (and at 4 px)
    batch_per_resolution: dict[int, int] = field(default_factory=dict)  # progressive: px -> batch; {} = batch_size
    seed: int = 0  # seeds weights, noise and data order
    device: str = "auto"  # auto (CUDA when present, else CPU) | cpu | cuda | cuda:N
    channels_last: bool = True  # conv memory format; 7-12% faster on CPU here
    precision: str = "fp32"  # fp32 | bf16 (autocast) | fp16 (autocast + a GradScaler per network)
    sync_batchnorm: bool = False  # several processes: BatchNorm statistics over the global batch (CUDA only)
    log_every: int = 50  # steps between stats.jsonl records (the only host syncs)
    sample_every: int = 500  # steps between fixed-noise sample grids
    checkpoint_every: int = 1000  # steps between step-XXXXXX.pt checkpoints
    grid_samples: int = 64  # samples in each grid (points for 2-D data get 4096 instead)
    augment: str = "none"  # augment registry name applied to D's inputs: none | diffaugment
    augment_policy: list[str] = field(default_factory=lambda: ["color", "translation", "cutout"])  # diffaugment ops
    on_divergence: str = "stop"  # non-finite loss or weight: stop (exit 3) | rollback (to the last good checkpoint)
    max_rollbacks: int = 3  # rollback: times the lrs may be halved and the run restored before it stops
    keep_checkpoints: int = 0  # newest step-XXXXXX.pt files kept; 0 = all (latest/best are always kept)

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "gradient_accumulation", "discriminator_steps", "generator_steps",
                    "log_every", "sample_every", "checkpoint_every", "grid_samples"):
            _check(getattr(self, key) > 0, f"train.{key} must be positive, not {getattr(self, key)}.")
        _check(self.precision in ("fp32", "bf16", "fp16"),
               f"train.precision must be fp32, bf16 or fp16, not '{self.precision}'.")
        _check(self.optimizer in ("adam", "rmsprop"),
               f"train.optimizer must be adam or rmsprop, not '{self.optimizer}'.")
        for key in ("lr_G", "lr_D"):  # nan > 0 is False, but inf > 0 is True: both are refused here
            value = getattr(self, key)
            _check(math.isfinite(value) and value > 0, f"train.{key} must be a positive finite number, not {value}.")
        _check(self.lr_schedule in ("constant", "linear"),
               f"train.lr_schedule must be constant or linear, not '{self.lr_schedule}'.")
        _check(0 < self.lr_decay_fraction <= 1,
               f"train.lr_decay_fraction must be in (0, 1], not {self.lr_decay_fraction}.")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
               "train.betas must be two numbers in [0, 1), such as [0.5, 0.999].")
        _check(self.epochs >= 0, f"train.epochs must be 0 (use train.steps) or more, not {self.epochs}.")
        _check(self.ema_halflife_kimg >= 0, "train.ema_halflife_kimg must be 0 or more.")
        _check(self.schedule in ("constant", "progressive"),
               f"train.schedule must be constant or progressive, not '{self.schedule}'.")
        for key in ("fade_kimg", "stable_kimg"):
            _check(getattr(self, key) > 0, f"train.{key} must be a positive number of thousands of images, "
                                           f"not {getattr(self, key)}.")
        bad = {r: b for r, b in self.batch_per_resolution.items() if r < 4 or r & (r - 1) or b <= 0}
        _check(not bad, f"train.batch_per_resolution maps powers of two from 4 px to positive batch sizes, "
                        f"not {bad}.")
        _check(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"),
               f"train.device must be auto, cpu, cuda or cuda:N, not '{self.device}'.")
        _check(self.on_divergence in ("stop", "rollback"),
               f"train.on_divergence must be stop or rollback, not '{self.on_divergence}'.")
        _check(self.max_rollbacks >= 0, f"train.max_rollbacks must be 0 or more, not {self.max_rollbacks}.")
        _check(self.keep_checkpoints >= 0,
               f"train.keep_checkpoints must be 0 (all) or more, not {self.keep_checkpoints}.")
        unknown = sorted(set(self.augment_policy) - {"color", "translation", "cutout"})
        _check(not unknown, f"train.augment_policy may hold color, translation and cutout, not {unknown}.")


@dataclass
class EvalConfig:
    metrics: list[str] = field(default_factory=list)  # metric registry names, empty = none
    every_kimg: float = 0.0  # thousands of images between evaluations; 0 = at the end only
    num_samples: int = 10000  # generated samples per evaluation
    num_reference: int = 0  # real images in the reference statistics; 0 = num_samples, capped at the split size
    reference_split: str = "train"  # real split the scores compare with: train | test
    network: str = "G_ema"  # generator evaluated: G_ema | G
    seed: int = 0  # noise seed of evaluation samples: the same noise at every evaluation
    best_metric: str = ""  # score that picks checkpoints/best.pt (e.g. fid, cfid); "" = first metric's main score
    collapse_factor: float = 2.0  # collapse: best_metric this many times worse than its best so far...
    collapse_patience: int = 2  # ...at this many evaluations in a row (see README, "Collapse")
    collapse_factors: dict[str, float] = field(default_factory=dict)  # per score: its own factor; named = watched
    diversity_floor: float = 0.1  # collapse when the samples' spread falls below this share of the real data's; 0 = off
    inception_weights: str = ""  # path of weights-inception-2015-12-05-6726825d.pth; "" = torch hub cache
    classifier: str = ""  # file from `gankit classifier train`; "" = the cached one for data.name
    cache_dir: str = ""  # reference statistics and classifiers; "" = $GANKIT_CACHE or ~/.cache/gankit

    def __post_init__(self) -> None:
        _check(self.every_kimg >= 0, "eval.every_kimg must be 0 or more.")
        _check(self.num_samples > 0, "eval.num_samples must be positive.")
        _check(self.num_reference >= 0, "eval.num_reference must be 0 or more.")
        _check(self.reference_split in ("train", "test"),
               f"eval.reference_split must be train or test, not '{self.reference_split}'.")
        _check(self.network in ("G_ema", "G"), f"eval.network must be G_ema or G, not '{self.network}'.")
        _check(self.collapse_factor > 1, "eval.collapse_factor must be more than 1.")
        _check(self.collapse_patience > 0, "eval.collapse_patience must be positive.")
        bad = [k for k, v in self.collapse_factors.items() if v <= 1]
        _check(not bad, f"eval.collapse_factors must all be more than 1, not {bad[0] if bad else ''}'s.")
        _check(0 <= self.diversity_floor < 1, "eval.diversity_floor must be in [0, 1): a share of the real spread.")


@dataclass
class Config:
    preset: str = ""  # name of the preset this run started from
    description: str = ""  # one line shown by `gankit presets`
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        if self.train.schedule != "progressive":
            return
        # Checked here, where both sections are known, so `--dry-run` catches them too.
        r = self.data.resolution
        _check(r >= 8 and not r & (r - 1), f"train.schedule=progressive grows by doubling from 4 px, so "
                                           f"data.resolution must be a power of two from 8, not {r}.")
        missing = [s for s in (4 * 2**i for i in range(r.bit_length() - 2)) if s not in self.train.batch_per_resolution]
        _check(not self.train.batch_per_resolution or not missing,
               f"train.batch_per_resolution has no batch size for {missing[0] if missing else 0} px; give one for "
               f"every resolution from 4 to {r} px, or leave it empty to use train.batch_size.")


# ---------------------------------------------------------------------------------------------
# Dict <-> dataclass, with type checks that name the closest valid key.


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The field types of a config class, evaluated once. The annotations are strings (postponed
    evaluation); unmemoized, resolving one config with six overrides evaluated them some 600
    times (90 ms of CPU), which every `gankit train` and a sweep's check of every trial paid."""
    return typing.get_type_hints(cls)


def valid_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key a user may set, such as 'train.steps'."""
    return list(_valid_keys(cls, prefix))


@functools.cache
def _valid_keys(cls: type, prefix: str) -> tuple[str, ...]:
    keys: list[str] = []
    for f in dataclasses.fields(cls):
        hint = _hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            keys += _valid_keys(hint, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return tuple(keys)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the field's type; ints widen to float, nothing else converts."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is type(None) and value is None:
                return None
        for option in typing.get_args(hint):
            if option is not type(None):
                return _coerce(value, option, key)
    if origin is dict:  # eval.collapse_factors={cfid: 1.5}
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise GankitError(f"{key} must be a mapping such as {{cfid: 1.5}}, not {value!r}.")
        return {_coerce(k, key_type, key): _coerce(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, (str, int, float)) and item is str:
            value = [v for v in str(value).split(",") if v]  # eval.metrics=fid,is
        if not isinstance(value, (list, tuple)):
            raise GankitError(f"{key} must be a list such as [1, 2], not {value!r}.")
        return [_coerce(v, item, key) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads `1e-3` (no dot) as a string; users mean the number
            value = float(value)
        except ValueError:
            pass
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a name like `data.name=10` stays a string
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise GankitError(f"{key} must be {_type_name(hint)}, not {value!r}.")
    if hint is float and not math.isfinite(value):  # no setting means anything at inf or nan
        raise GankitError(f"{key} must be a finite number, not {value}.")
    return value


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in hints:
            raise GankitError(f"unknown config key '{key}'{_suggest_key(key)}")
        if dataclasses.is_dataclass(hints[name]):
            if not isinstance(value, dict):
                example = dataclasses.fields(hints[name])[0].name
                raise GankitError(f"{key} is a section; set one of its keys such as {key}.{example}.")
            kwargs[name] = _build(hints[name], value, f"{key}.")
        else:
            kwargs[name] = _coerce(value, hints[name], key)
    assert set(kwargs) <= set(names)
    return cls(**kwargs)


def _suggest_key(key: str) -> str:
    keys = valid_keys()
    leaf = key.rsplit(".", 1)[-1]
    # Match on the full key first, then on the last part, so 'steps=5' finds 'train.steps'.
    match = closest(key, keys) or next((k for k in keys if k.endswith("." + leaf)), None)
    return f"; did you mean '{match}'?" if match else "; run `gankit train PRESET --dry-run` to see the keys."


def from_dict(values: dict[str, Any]) -> Config:
    return _build(Config, values, "")


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _merge(base: dict[str, Any], delta: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    out = dict(base)
    for key, value in delta.items():
        # Sections (data, model, ...) merge key by key; a mapping value such as
        # train.batch_per_resolution is one setting, replaced whole.
        if depth == 0 and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, depth + 1)
        else:
            out[key] = value
    return out


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """['train.steps=10', 'eval.metrics=[fid,is]'] -> nested dict with YAML-typed values."""
    from gankit.aliases import expand  # seed-style short names: sng, spd=2, rtype=tnormal, ...

    nested: dict[str, Any] = {}
    for item in (full for given in overrides for full in expand(given)):
        if "=" not in item:
            raise GankitError(f"override '{item}' is not of the form key=value, such as train.steps=100.")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        if key not in _valid_keys(Config, ""):
            raise GankitError(f"unknown config key '{key}'{_suggest_key(key)}")
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


# ---------------------------------------------------------------------------------------------
# Presets: YAML deltas shipped in gankit/presets/.


def _preset_dir() -> Path:
    return Path(str(resources.files("gankit") / "presets"))


def list_presets() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped preset, sorted by name."""
    out = []
    for path in sorted(_preset_dir().glob("*.yaml"), key=lambda p: p.stem):
        data = yaml.safe_load(path.read_text()) or {}
        out.append((path.stem, data.get("description", "")))
    return out


def preset_values(name: str) -> dict[str, Any]:
    path = _preset_dir() / f"{name}.yaml"
    if not path.is_file():
        names = [n for n, _ in list_presets()]
        using = [n for n in names if n.split("-", 1)[-1] == name or n.endswith("-" + name)]
        if using:  # seed 001 typed the dataset (`python main.py celeba`); here a preset names data and model
            raise GankitError(f"'{name}' is a dataset, not a preset; train a preset that uses it: {', '.join(using)}.")
        raise GankitError(f"unknown preset '{name}'{did_you_mean(name, names)} Run `gankit presets` to list them.")
    values = yaml.safe_load(path.read_text()) or {}
    values["preset"] = name
    return values


def _overrides(overrides: list[str]) -> dict[str, Any]:
    nested = parse_overrides(list(overrides))
    train = nested.get("train", {})
    if "steps" in train and "epochs" not in train:
        train["epochs"] = 0.0  # a length given in steps replaces one given in epochs (a resumed run's too)
    return nested


def resolve(preset: str, overrides: list[str] = ()) -> Config:
    """The config a run uses: defaults, then the preset's delta, then the overrides."""
    return from_dict(_merge(preset_values(preset), _overrides(overrides)))


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    return from_dict(_merge(to_dict(cfg), _overrides(overrides)))


def save(cfg: Config, path: Path) -> None:
    from gankit.utils import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def load(path: Path) -> Config:
    try:
        values = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise GankitError(f"cannot read config {path}: {exc}; restore it or start a new run.") from None
    return from_dict(values)


def steps_from_epochs(cfg: Config, dataset: Any) -> Config:
    """`cfg` with `train.steps` counted from `train.epochs` passes over `dataset` (unchanged when 0).

    One epoch is every image shown to D once, in the whole batches the loaders make (a ragged
    tail is dropped each epoch); a step shows D `batch_size * gradient_accumulation *
    discriminator_steps` images. Seed 000's `--epochs 300 --batch_size 64` on 30,000 faces is
    300 * 468 = 140,400 steps.
    """
    t = cfg.train
    if t.epochs <= 0:
        return cfg
    try:
        size = len(dataset)
    except TypeError:
        raise GankitError(f"train.epochs counts passes over a dataset of fixed size, but {cfg.data.name} is "
                          "sampled afresh for every batch; set train.steps instead.") from None
    batches = t.epochs * (size // t.batch_size)
    steps = max(1, math.ceil(batches / (t.gradient_accumulation * t.discriminator_steps) - 1e-9))
    return dataclasses.replace(cfg, train=dataclasses.replace(t, steps=steps))
