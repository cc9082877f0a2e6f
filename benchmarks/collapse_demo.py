"""Seed 002's mode-collapse pictures: a vanilla GAN's samples through training, on the ring and on MNIST.

    .venv/bin/python benchmarks/collapse_demo.py [--presets gan-ring8-collapse,gan-mnist-collapse]
        [--panels 200,400,600] [--seed 1] [--out docs/img] [key=value ...]

For each preset it trains up to each panel's step (default: every `train.sample_every` steps,
which the collapse presets set to the seed's panels) and there draws samples from G_ema on
fixed noise: for 2-D data a scatter over real points (with the `modes` metric and the share of
samples nearest to one mode), for images a grid (with the MNIST classifier's digit histogram of
2,000 samples, which shows which digit the samples collapse to). The panels go side by side
into OUT/PRESET.png, as the seed's README shows them, and the numbers are printed for the README.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from gankit import config as config_lib  # noqa: E402
from gankit.latent import build_prior  # noqa: E402
from gankit.metrics.classifier import ClassifierBackbone, default_classifier_path  # noqa: E402
from gankit.metrics.evaluate import cache_root  # noqa: E402
from gankit.metrics.modes2d import mode_metrics  # noqa: E402
from gankit.sampling import draw_samples  # noqa: E402
from gankit.training.loop import build_run, training_loop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def describe(run, fake: torch.Tensor, classifier) -> tuple[str, str]:
    """(one line of numbers, short panel caption) for samples at the current step."""
    if fake.dim() == 2:
        s = mode_metrics(fake, run.dataset.means, run.dataset.std)
        nearest = torch.cdist(fake, run.dataset.means).argmin(1)
        share = 100 * torch.bincount(nearest, minlength=len(run.dataset.means)).max().item() / len(fake)
        return (f"modes {s['modes_covered']}/{len(run.dataset.means)}  HQ {s['high_quality_pct']:.1f}%  "
                f"KL {s['mode_kl']:.2f}  nearest one mode: {share:.0f}%",
                f"{s['modes_covered']} modes, {share:.0f}% at one")
    digits = classifier(fake)["logits"].argmax(1)
    counts = torch.bincount(digits, minlength=10)
    top = int(counts.argmax())
    share = 100 * counts[top].item() / len(digits)
    return f"digits {counts.tolist()}  most common {top}: {share:.0f}%", f"{share:.0f}% '{top}'"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="gan-ring8-collapse,gan-mnist-collapse")
    parser.add_argument("--panels", default="", help="steps to draw at, e.g. 200,400; default: every sample_every")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    for preset in args.presets.split(","):
        cfg = config_lib.resolve(preset, [*args.overrides, f"train.seed={args.seed}", "train.device=cpu"])
        run = build_run(cfg, None, torch.device("cpu"))
        prior = build_prior(cfg.model)
        classifier = None
        if len(run.dataset.shape) == 3:
            classifier = ClassifierBackbone(default_classifier_path(cache_root(cfg.eval), cfg.data))
        panels = []
        start = time.process_time()
        panel_steps = ([int(s) for s in args.panels.split(",")] if args.panels
                       else list(range(cfg.train.sample_every, cfg.train.steps + 1, cfg.train.sample_every)))
        for steps in panel_steps:
            run.cfg = config_lib.with_overrides(cfg, [f"train.steps={steps}"])
            training_loop(run, [])
            with torch.no_grad():
                fake = draw_samples(run.G_ema, prior, 2000, cfg.eval.seed, torch.device("cpu"), 0)
                numbers, caption = describe(run, fake, classifier)
            print(f"{preset} step {steps}: {numbers}  ({time.process_time() - start:.0f} CPU s)", flush=True)
            panels.append((steps, fake, caption))
        fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.1))
        for ax, (steps, fake, caption) in zip(axes, panels, strict=True):
            if fake.dim() == 2:
                real = run.dataset.sample(2000, torch.Generator().manual_seed(0))[0]
                ax.scatter(real[:, 0], real[:, 1], s=1, c="black")
                ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.3)
                extent = 1.4 * float(run.dataset.means.abs().max())  # the ring, with a margin
                ax.set_xlim(-extent, extent)
                ax.set_ylim(-extent, extent)
                ax.set_aspect("equal")
            else:
                grid = make_grid(fake[:36], nrow=6, normalize=True, value_range=(-1, 1))
                ax.imshow(grid.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            # The seed counts D updates as steps (G updates every 5th); gankit counts G updates.
            d_updates = steps * cfg.train.discriminator_steps
            ax.set_title(f"{steps} G steps ({d_updates} D)\n{caption}", fontsize=9)
        fig.tight_layout()
        args.out.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out / f"{preset}.png", dpi=90)
        plt.close(fig)
        print(f"wrote {args.out / f'{preset}.png'}")


if __name__ == "__main__":
    main()
