"""Which mode each latent lands on, for a 2-D-mixture run with a 2-D z: a picture of how G cuts z.

    .venv/bin/python benchmarks/z_cells.py RUN_DIR OUT.png [--checkpoint latest] [--extent 3]

G maps a Gaussian z continuously onto K separate modes, so it must cut z's plane into K cells; the
latents near a cut land between two modes (the bridges), and the high-quality share is what
Gaussian mass lies away from the cuts. The picture colours each z on a 500 x 500 lattice by the
mode its sample lands within 3 std of (colour from the mode's position: x as red, y as blue),
black where it lands on none, with z's 1- and 2-std circles. It prints the Gaussian mass of z
that lands on no mode, which is 100% minus the high-quality share at infinitely many samples.
The README's grid paragraph shows it for `wgan-gp-grid25-tuned`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from gankit.data import build_dataset  # noqa: E402
from gankit.metrics.modes2d import nearest_modes  # noqa: E402
from gankit.sampling import load_sampler  # noqa: E402

SIDE = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", default="latest")
    parser.add_argument("--extent", type=float, default=3.0, help="the picture spans [-E, E] in both z axes")
    args = parser.parse_args()

    sampler = load_sampler(args.run_dir, args.checkpoint)
    if sampler.cfg.model.z_dim != 2 or len(sampler.shape) != 1:
        raise SystemExit(f"error: {args.run_dir} is not a 2-D mixture run with a 2-D z; nothing to draw.")
    dataset = build_dataset(sampler.cfg.data)
    means = dataset.means.float()

    axis = torch.linspace(-args.extent, args.extent, SIDE)
    z1, z0 = torch.meshgrid(axis, axis, indexing="ij")  # rows follow z[1], columns z[0]
    z = torch.stack([z0.flatten(), z1.flatten()], dim=1)
    with torch.inference_mode():
        x = sampler.G(z.to(sampler.device)).cpu().view(-1, 2)
    mode, lands = nearest_modes(x, means, float(dataset.std))
    density = torch.exp(-0.5 * (z ** 2).sum(dim=1))
    print(f"Gaussian mass of z landing on no mode: {100 * density[~lands].sum() / density.sum():.2f}%"
          f" (the lattice spans ±{args.extent:g} std)")

    span = means.max(dim=0).values - means.min(dim=0).values
    position = (means - means.min(dim=0).values) / span  # (K, 2) in [0, 1]
    colours = torch.stack([0.2 + 0.8 * position[:, 0], torch.full_like(position[:, 0], 0.55),
                           0.2 + 0.8 * position[:, 1]], dim=1)
    image = torch.where(lands[:, None], colours[mode], torch.zeros(3)).view(SIDE, SIDE, 3)

    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    extent = (-args.extent, args.extent, -args.extent, args.extent)
    ax.imshow(image.numpy(), extent=extent, origin="lower", interpolation="nearest")
    ax.contour(axis.numpy(), axis.numpy(), density.view(SIDE, SIDE).numpy(),
               levels=[math.exp(-0.5 * r * r) for r in (2, 1)],
               colors="white", linewidths=0.7)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(f"{sampler.cfg.preset or args.run_dir.name}: the mode each z lands on\n"
                 "(black: none; white: 1 and 2 std of z)", fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
