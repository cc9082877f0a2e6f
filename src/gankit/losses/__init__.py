"""The loss registry: one small object per GAN formulation, the *objective* of a run.

The objective owns everything about how G is used, so the loop never calls G or the prior:
- `make_batch(nets, real, labels, noise, phase)` turns a real batch and the run's noise stream
  into a `Batch` (real, fake, z, labels). The default draws z from the prior and calls
  `G(z, labels)`, so unconditional and conditional GANs need nothing more; an image-to-image
  objective (CycleGAN) translates the real batch instead.
- `discriminator(nets, batch)` and `generator(nets, batch)` return named terms,
  `{"D/adv": tensor}` and `{"G/adv": tensor}`; the loop sums, backpropagates and logs them.
- `preview_inputs`/`preview` make the fixed sample grid, `generate` the samples metrics score.
- `state_dict`/`load_state_dict` carry state across steps (CycleGAN's image pools) into checkpoints.
Penalties (gradient penalty, R1, ...) are separate objects with their own weight and interval,
so no formulation carries an `if` for them. A loss that needs more than D's logits (ACGAN's
classifier, VEEGAN's reconstructor, CycleGAN's cycle term) overrides `discriminator`/`generator`
and reads what it needs from `nets`/`batch`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from gankit.errors import GankitError
from gankit.nets import Nets
from gankit.ranks import draw_share
from gankit.registry import Registry

if TYPE_CHECKING:
    from gankit.config import DataConfig

Terms = dict[str, torch.Tensor]


@dataclass
class Batch:
    """What one phase of one step works on.

    `make_batch` returns fakes with their graph to G; the loop hands D `detached()` fakes and G the
    same fakes with the graph intact, so one G forward serves both phases of a step."""

    real: torch.Tensor  # (B, *data_shape)
    fake: torch.Tensor  # (B, *data_shape)
    z: torch.Tensor | None  # (B, z_dim), the noise that made `fake`; None when G translates images
    labels: torch.Tensor | None  # (B,) class (or domain) labels shared by real and fake, or None

    def detached(self) -> Batch:
        return dataclasses.replace(self, fake=self.fake.detach())

    def augmented(self, augment) -> Batch:
        """Real and fake through D's augmentation (differentiable, so G learns through it)."""
        return dataclasses.replace(self, real=augment(self.real), fake=augment(self.fake))


@dataclass
class EvalSet:
    """Samples for metrics and what they are judged against."""

    name: str  # "" for a noise model's samples; a translation's direction (AtoB, BtoA)
    fake: torch.Tensor  # (N, *data_shape) on the CPU
    data: Any  # DataConfig of the real images they are compared with (eval.reference_split applies)
    labels: torch.Tensor | None  # (N,) the class each sample should show, or None


class Objective:
    """The loss family's shared behaviour: a noise-driven G, previews and metric samples.

    Subclasses define `discriminator` and `generator`; `setup` runs once before use (the
    registry builder sees only `cfg.loss`, this sees the whole run config and data shape).
    """

    prior: Any = None
    num_classes: int = 0
    data_shape: tuple[int, ...] = ()

    def setup(self, cfg, data_shape: tuple[int, ...], num_classes: int) -> None:
        from gankit.errors import GankitError
        from gankit.latent import build_prior
        from gankit.nets import drawn_classes, is_translator

        if is_translator(cfg.model.name):
            raise GankitError(f"model {cfg.model.name} translates images, which loss {cfg.loss.name} cannot train; "
                              f"it needs loss.name={cfg.model.name}.")
        self.prior = build_prior(cfg.model)
        self.cfg, self.data_shape = cfg, tuple(data_shape)
        self.num_classes = drawn_classes(cfg.model.name, num_classes)  # the classes previews draw

    # -- training ---------------------------------------------------------------------------

    def make_batch(self, nets: Nets, real: torch.Tensor, labels: torch.Tensor | None,
                   noise: torch.Generator, phase=None) -> Batch:
        """Fakes for one real batch; conditional fakes carry the real batch's labels. The real batch
        is first brought to the phase's resolution (and fade blend): a no-op unless PGGAN grows.

        Under several processes every rank draws the global batch's z and keeps its rows (the
        real batch is this rank's rows), so the noise stream stays in step and ranks' z differ."""
        real = phase.real(real) if phase is not None else real
        z = draw_share(lambda n: self.prior.sample(n, noise, real.device), len(real))  # (len(real), z_dim)
        return Batch(real=real, fake=nets.G(z, labels), z=z, labels=labels)

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        raise NotImplementedError

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        raise NotImplementedError

    def after_discriminator_step(self, nets: Nets) -> None:
        """Called after each D optimizer step; WGAN's weight clipping lives here."""

    def state_dict(self) -> dict[str, Any]:
        return {}  # a noise-driven objective keeps nothing between steps

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    # -- previews and metric samples ----------------------------------------------------------

    def preview_inputs(self, dataset, n: int, seed: int, device: torch.device) -> dict[str, torch.Tensor]:
        """What G sees in every sample grid: fixed noise (and labels cycling through the classes).

        2-D points get 4096 samples, enough to show which modes are covered."""
        n = 4096 if len(self.data_shape) == 1 else n
        inputs = {"z": self.prior.sample(n, torch.Generator(device).manual_seed(seed), device)}
        if self.num_classes:
            inputs["labels"] = torch.arange(n, device=device) % self.num_classes
        return inputs

    @torch.no_grad()
    def preview(self, G: torch.nn.Module, inputs: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
        """(images on the CPU, their class labels (a class per grid row) or None, images per row or None)."""
        labels = inputs.get("labels")
        return G(inputs["z"], labels).float().cpu(), labels, None

    def generate(self, G: torch.nn.Module, n: int, seed: int, device: torch.device, batch_size: int = 250,
                 prior=None) -> torch.Tensor:
        """n samples (n, *data_shape) on the CPU from G in eval mode on seeded noise, classes cycling;
        `prior` replaces the run's (the truncation trick)."""
        from gankit.sampling import draw_samples

        return draw_samples(G, prior or self.prior, n, seed, device, self.num_classes, batch_size)

    def evaluation_data(self) -> dict[str, DataConfig]:
        """Each evaluation set's name and the data its samples are scored against."""
        return {"": self.cfg.data}

    def evaluation_sets(self, G: torch.nn.Module, n: int, seed: int, device: torch.device) -> list[EvalSet]:
        """What metrics score: n samples against the run's own data; a conditional G's samples carry
        the class they were drawn for (0, 1, 2, ... cycling), which label_preservation checks."""
        labels = torch.arange(n) % self.num_classes if self.num_classes else None
        return [EvalSet("", self.generate(G, n, seed, device), self.evaluation_data()[""], labels)]

    def default_metrics(self) -> list[str]:
        """`gankit eval`'s metrics when neither the command nor the run names any."""
        return ["modes"] if len(self.data_shape) == 1 else ["fid", "is", "kid", "pr"]


class LogitLoss(Objective):
    """A formulation that needs only D's logits on real and fake batches.

    Subclasses define `d_terms(real_logits, fake_logits)` and `g_terms(fake_logits)`, each a
    scalar tensor; most GAN losses (minimax, non-saturating, LSGAN, hinge, Wasserstein) fit.
    """

    def d_terms(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_terms(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        real_logits = nets.D(batch.real, batch.labels)
        fake_logits = nets.D(batch.fake, batch.labels)
        return {"D/adv": self.d_terms(real_logits, fake_logits)}

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        return {"G/adv": self.g_terms(nets.D(batch.fake, batch.labels))}


LOSSES: Registry = Registry("loss")
register_loss = LOSSES.register
get_loss = LOSSES.get
list_losses = LOSSES.list


class SplitLoss(LogitLoss):
    """D trained by one formulation and G by another (seed 001's `-cd=hinge -cg=bce`).

    Each side keeps its own terms, so the pairs are the published ones: hinge for D with the
    non-saturating G loss, say, as in several SNGAN/BigGAN ablations. D's formulation also
    owns what happens after D's step (WGAN's clipping). Only formulations that read D's logits
    alone can be paired; ACGAN and VEEGAN train extra networks on both sides.
    """

    def __init__(self, d_loss: LogitLoss, g_loss: LogitLoss):
        self.d_loss, self.g_loss = d_loss, g_loss

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        return self.d_loss.discriminator(nets, batch)

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        return self.g_loss.generator(nets, batch)

    def after_discriminator_step(self, nets: Nets) -> None:
        self.d_loss.after_discriminator_step(nets)


def build_loss(cfg) -> Objective:
    """The loss named by `cfg` (a LossConfig), not yet set up: for contract tests of the terms."""
    d_loss = LOSSES.build(cfg.name, cfg)
    if not cfg.generator or cfg.generator == cfg.name:
        return d_loss
    g_loss = LOSSES.build(cfg.generator, cfg)
    for name, loss in ((cfg.name, d_loss), (cfg.generator, g_loss)):
        # A pairable loss is a plain LogitLoss: its D phase reads only D's logits on real and fake.
        if type(loss).discriminator is not LogitLoss.discriminator or type(loss).generator is not LogitLoss.generator:
            raise GankitError(f"loss {name} trains its own extra network, so it cannot be paired with another "
                              f"for G and D; drop loss.generator (-cg) or use minimax, nonsaturating, lsgan, "
                              "hinge or wasserstein on both sides.")
    return SplitLoss(d_loss, g_loss)


def build_objective(cfg, data_shape: tuple[int, ...], num_classes: int) -> Objective:
    """The run's objective from its whole Config, ready to make batches, previews and samples."""
    objective = build_loss(cfg.loss)
    objective.setup(cfg, data_shape, num_classes)
    return objective


from gankit.losses import (  # noqa: E402,F401
    acgan,
    cyclegan,
    hinge,
    lsgan,
    minimax,
    nonsaturating,
    veegan,
    wasserstein,
)
