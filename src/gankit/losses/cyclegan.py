"""CycleGAN objective (Zhu, Park, Isola & Efros 2017, eq. 1-3 and sec. 4).

Two translators G_AB, G_BA and two discriminators D_A, D_B on unpaired batches (half A, half B):
- adversarial: LSGAN (Mao et al. 2017), as the paper's sec. 4 prefers to the log loss for
  stability; D minimises 1/2 [(D(real) - 1)^2 + D(fake)^2], G minimises (D(G(x)) - 1)^2, every
  term a mean over D's 70x70 patches;
- cycle consistency: lambda * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1), lambda = 10;
- identity: 0.5 lambda * (|G_AB(b) - b|_1 + |G_BA(a) - a|_1), which the paper (sec. 5.2) adds to
  keep colours when the domains share them;
- history pools (Shrivastava et al. 2017): each D sees a fake drawn from the last 50 of its
  domain's fakes with probability 1/2 instead of the newest, which damps oscillation.

The objective makes its own batch: `make_batch` translates the real batch (no noise), and the
loop reuses those fakes, with their graph, for G's update, as the authors' code does (G's update
first, then D's on the same fakes: the fakes are made by the same weights either way).
Sample grids and metrics translate fixed test images instead of drawing noise.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from gankit.data.unpaired import DOMAIN_A, DOMAIN_B, split_domains
from gankit.errors import GankitError
from gankit.losses import Batch, EvalSet, Objective, Terms, register_loss
from gankit.nets import Nets, is_translator

if TYPE_CHECKING:
    from gankit.config import DataConfig

DIRECTIONS = {"AtoB": (DOMAIN_A, "G_AB"), "BtoA": (DOMAIN_B, "G_BA")}


class ImagePool:
    """The last `size` fakes of one domain (Shrivastava et al. 2017, sec. 3.2, as CycleGAN's code).

    Until the pool is full every fake is stored and returned. Then each fake, with probability
    1/2, is returned as is; otherwise it replaces a random stored fake, which is returned in its
    place. Random numbers come from the global torch RNG, which checkpoints save.
    """

    def __init__(self, size: int):
        self.size = size
        self.images: torch.Tensor | None = None  # (n <= size, C, H, W), detached fakes

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        if self.images is None:
            self.images = fakes[:0].clone()
        self.images = self.images.to(fakes.device)
        swap = torch.rand(len(fakes)).tolist()  # drawn for every fake, so the RNG stream never depends on fill
        slot = torch.randint(self.size, (len(fakes),)).tolist()
        out = []
        for image, u, i in zip(fakes, swap, slot, strict=True):
            if len(self.images) < self.size:
                self.images = torch.cat([self.images, image[None]])
                out.append(image)
            elif u > 0.5:
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images if self.images is not None else torch.empty(0)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        images = state["images"]
        self.images = images.clone() if images.dim() == 4 else None


class CycleGANLoss(Objective):
    def __init__(self, cycle_weight: float, identity_weight: float, pool_size: int):
        self.cycle_weight = cycle_weight  # lambda of eq. 3
        self.identity_weight = identity_weight * cycle_weight  # the paper's 0.5 lambda
        self.pools = {DOMAIN_A: ImagePool(pool_size), DOMAIN_B: ImagePool(pool_size)}
        self.cfg = None

    def setup(self, cfg, data_shape: tuple[int, ...], num_classes: int) -> None:
        if not is_translator(cfg.model.name):
            raise GankitError(f"loss cyclegan translates images with two generators, which model {cfg.model.name} "
                              "does not have; use model.name=cyclegan.")
        if cfg.train.augment != "none":
            raise GankitError("loss cyclegan compares translations with their inputs pixel by pixel, so it takes "
                              "no train.augment; set train.augment=none.")
        self.cfg, self.data_shape, self.num_classes = cfg, tuple(data_shape), num_classes

    @staticmethod
    def _check(nets: Nets) -> None:
        if not hasattr(nets.G, "G_AB"):
            raise GankitError("loss cyclegan needs the two generators and discriminators of model.name=cyclegan.")

    # -- training ---------------------------------------------------------------------------

    def make_batch(self, nets: Nets, real: torch.Tensor, labels: torch.Tensor | None,
                   noise: torch.Generator, phase=None) -> Batch:
        self._check(nets)
        real_a, real_b = split_domains(real)
        fake = torch.cat([nets.G.G_AB(real_a), nets.G.G_BA(real_b)])  # (B/2 in domain B, B/2 in domain A)
        return Batch(real=real, fake=fake, z=None, labels=labels)

    def discriminator(self, nets: Nets, batch: Batch) -> Terms:
        self._check(nets)
        real_a, real_b = split_domains(batch.real)
        fake_b, fake_a = split_domains(batch.fake)
        terms = {}
        for name, D, real, fake in (("D/A", nets.D.D_A, real_a, self.pools[DOMAIN_A].query(fake_a)),
                                    ("D/B", nets.D.D_B, real_b, self.pools[DOMAIN_B].query(fake_b))):
            real_logits, fake_logits = D(real), D(fake)  # (B/2, 1, H', W') patch logits
            terms[name] = 0.5 * (F.mse_loss(real_logits, torch.ones_like(real_logits))
                                 + F.mse_loss(fake_logits, torch.zeros_like(fake_logits)))
        return terms

    def generator(self, nets: Nets, batch: Batch) -> Terms:
        self._check(nets)
        G, D = nets.G, nets.D
        real_a, real_b = split_domains(batch.real)
        fake_b, fake_a = split_domains(batch.fake)
        adv = sum(F.mse_loss(logits, torch.ones_like(logits)) for logits in (D.D_B(fake_b), D.D_A(fake_a)))
        cycle = F.l1_loss(G.G_BA(fake_b), real_a) + F.l1_loss(G.G_AB(fake_a), real_b)
        terms = {"G/adv": adv, "G/cycle": self.cycle_weight * cycle}
        if self.identity_weight > 0:  # the paper's horse2zebra runs go without; skip two G forwards then
            identity = F.l1_loss(G.G_AB(real_b), real_b) + F.l1_loss(G.G_BA(real_a), real_a)
            terms["G/identity"] = self.identity_weight * identity
        return terms

    def state_dict(self) -> dict[str, Any]:
        return {"pool_A": self.pools[DOMAIN_A].state_dict(), "pool_B": self.pools[DOMAIN_B].state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:  # a checkpoint from before pools were saved starts them empty
            self.pools[DOMAIN_A].load_state_dict(state["pool_A"])
            self.pools[DOMAIN_B].load_state_dict(state["pool_B"])

    # -- previews, translation and metrics ------------------------------------------------------

    def test_domains(self, dataset=None):
        """(domain A, domain B) datasets of the test split, or of `dataset` when there is no test split."""
        from gankit.data import build_dataset

        try:
            test = build_dataset(dataclasses.replace(self.cfg.data, split="test"))
        except GankitError:
            if dataset is None:
                raise
            test = dataset
        if not hasattr(test, "a"):
            raise GankitError("loss cyclegan trains on two domains; use data.name=unpaired (folders trainA/ and "
                              "trainB/) or data.name=digits2mnist.")
        return test.a, test.b

    def preview_inputs(self, dataset, n: int, seed: int, device: torch.device) -> dict[str, torch.Tensor]:
        """k fixed test images of each domain, k = sqrt(train.grid_samples) (8 by default)."""
        k = max(1, int(n ** 0.5))
        domain_a, domain_b = self.test_domains(dataset)
        return {"A": first_images(domain_a, k, seed).to(device), "B": first_images(domain_b, k, seed).to(device)}

    @torch.no_grad()
    def preview(self, G: torch.nn.Module, inputs: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
        """Rows A, G_AB(A), G_BA(G_AB(A)), then B, G_BA(B), G_AB(G_BA(B)): translation and reconstruction."""
        a, b = inputs["A"], inputs["B"]
        ab, ba = G.G_AB(a), G.G_BA(b)
        rows = [a, ab, G.G_BA(ab), b, ba, G.G_AB(ba)]
        return torch.cat([row.float().cpu() for row in rows]), None, len(a)

    @torch.no_grad()
    def translate(self, G: torch.nn.Module, images: torch.Tensor, direction: str, device: torch.device,
                  batch_size: int = 64) -> torch.Tensor:
        """images (N, C, H, W) in [-1, 1] on any device -> G_AB or G_BA of them, on the CPU."""
        net = getattr(G, DIRECTIONS[direction][1])
        was_training = G.training
        G.eval()
        out = [net(images[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
        G.train(was_training)
        return torch.cat(out)

    def generate(self, G: torch.nn.Module, n: int, seed: int, device: torch.device, batch_size: int = 64,
                 prior=None) -> torch.Tensor:
        """G_AB of up to n test images of domain A (all of them when n is larger)."""
        domain_a, _ = self.test_domains()
        return self.translate(G, all_images(domain_a)[:n], "AtoB", device, batch_size)

    def evaluation_data(self) -> dict[str, DataConfig]:
        """Each direction is scored against its target domain's split."""
        return {direction: dataclasses.replace(self.cfg.data, domain="AB"[DOMAIN_B if source == DOMAIN_A else DOMAIN_A])
                for direction, (source, _) in DIRECTIONS.items()}

    def evaluation_sets(self, G: torch.nn.Module, n: int, seed: int, device: torch.device) -> list[EvalSet]:
        """Each direction's translations of the source domain's test split (up to n), scored against
        the target domain's split: FID/KID per direction, and label preservation when labelled."""
        sets = []
        domains = dict(zip((DOMAIN_A, DOMAIN_B), self.test_domains(), strict=True))
        for direction, data in self.evaluation_data().items():
            source, _ = DIRECTIONS[direction]
            images = all_images(domains[source])[:n]
            labels = getattr(domains[source], "labels", None)
            sets.append(EvalSet(direction, self.translate(G, images, direction, device), data,
                                None if labels is None else labels[:n].cpu()))
        return sets

    def default_metrics(self) -> list[str]:
        return ["kid", "fid"]  # per direction; IS and precision/recall say little about a translation


def all_images(domain) -> torch.Tensor:
    """Every image of one domain, (N, C, H, W) in [-1, 1] on the CPU, in the dataset's order."""
    return first_images(domain, len(domain), seed=None)


def first_images(domain, k: int, seed: int | None) -> torch.Tensor:
    """k images of one domain in [-1, 1]: a seeded random choice, or the first k when seed is None."""
    from gankit.data.base import to_unit_range

    images = getattr(domain, "images", None)
    if images is None:  # streamed from disk: the first k of a seeded epoch order
        return domain.loader(min(k, len(domain)), seed or 0, torch.device("cpu")).next()[0]
    order = torch.arange(len(images)) if seed is None else torch.randperm(
        len(images), generator=torch.Generator().manual_seed(seed))
    return to_unit_range(images[order[:k]])


@register_loss("cyclegan")
def build_cyclegan(cfg) -> CycleGANLoss:
    return CycleGANLoss(cfg.cycle_weight, cfg.identity_weight, cfg.pool_size)
