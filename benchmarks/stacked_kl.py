"""Where a Stacked-MNIST KL comes from: each channel's digits, their dependence, the labeller's doubt.

    .venv/bin/python benchmarks/stacked_kl.py RUN_DIR [--samples 26000] [--checkpoint latest]

KL(p || uniform over 1,000) of the triples' histogram splits exactly into the three channels'
own KLs against uniform over 10 digits (their marginals) plus the channels' total correlation
(how far the triple is from independent digits). Both are printed for the run's G_ema and for as
many real triples of its dataset, with each channel's digit counts and how often the labeller
(the one the `stacked` metric uses) is sure of a channel (softmax > 0.9). The README's Stacked
MNIST paragraph quotes its output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gankit.data import build_dataset
from gankit.metrics.evaluate import Evaluation
from gankit.metrics.stacked_mnist import stacked_modes
from gankit.metrics.stats import kl_to_uniform
from gankit.sampling import load_sampler

SURE = 0.9


def label(backbone, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3) digits and (N, 3) softmax confidences, each channel read as a grey image."""
    n = len(images)
    prob = backbone(images.reshape(n * 3, 1, *images.shape[2:]))["logits"].softmax(1)
    return prob.argmax(1).reshape(n, 3), prob.max(1).values.reshape(n, 3)


def channel_kls(digits: torch.Tensor) -> list[float]:
    return [kl_to_uniform(torch.bincount(digits[:, c], minlength=10)) for c in range(3)]


def describe(name: str, digits: torch.Tensor, confidence: torch.Tensor) -> None:
    joint = stacked_modes(digits)
    marginal = channel_kls(digits)
    print(f"{name}: {len(digits)} samples, modes {joint['stacked_modes']}, KL {joint['stacked_kl']:.3f} = "
          f"channels {sum(marginal):.3f} ({', '.join(f'{k:.3f}' for k in marginal)}) "
          f"+ dependence {joint['stacked_kl'] - sum(marginal):.3f}")
    print(f"  sure channels (p > {SURE}): {float((confidence > SURE).float().mean()):.1%}; "
          f"samples with 3 sure channels: {float((confidence > SURE).all(1).float().mean()):.1%}")
    for c, colour in enumerate("RGB"):
        print(f"  {colour} digits 0-9: {torch.bincount(digits[:, c], minlength=10).tolist()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--samples", type=int, default=26000)
    parser.add_argument("--checkpoint", default="latest")
    args = parser.parse_args()
    with torch.inference_mode():
        sampler = load_sampler(args.run_dir, args.checkpoint)
        cfg = sampler.cfg
        fake = torch.cat(list(sampler.chunks(args.samples, cfg.eval.seed)))
        dataset = build_dataset(cfg.data)
        ev = Evaluation(fake, cfg.data, cfg.eval, dataset=dataset)
        backbone = ev.backbone("digit-classifier")  # the `stacked` metric's labeller
        describe("G_ema", *label(backbone, fake))
        pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:args.samples]
        real = dataset.images[pick].float() / 127.5 - 1
        describe("real ", *label(backbone, real))


if __name__ == "__main__":
    main()
