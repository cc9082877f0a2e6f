"""A real folder of face photos trains a DCGAN at 64 px, with no preparation by hand.

    .venv/bin/python benchmarks/faces_demo.py [--steps 300] [--out runs] [key=value ...]

With no network here, the photos are the 100 faces of scikit-image's LFW subset (greyscale
25x25 crops of Labeled Faces in the Wild, Huang et al. 2007; `skimage.data.lfw_subset()`, whose
last 100 images are non-faces and are left out). They are written as JPEG files into a folder,
and the folder is trained on through the real CLI exactly as a user's own folder would be:

    gankit train dcgan-mnist data.name=imagefolder data.path=FOLDER data.resolution=64 data.channels=3

The first run caches the folder in HDF5 (with a progress bar), warns once that all 100 images
are smaller than 64 px and were upscaled, and trains. Needs the dev extra (scikit-image).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def write_lfw_faces(folder: Path) -> int:
    """The 100 LFW faces as JPEGs, nested in two subfolders as real collections often are."""
    from PIL import Image
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]  # (100, 25, 25) float in [0, 1]
    for i, face in enumerate(faces):
        sub = folder / ("people_a" if i < 50 else "people_b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((face * 255).round().astype(np.uint8), "L").save(sub / f"face_{i:03d}.jpg", quality=95)
    return len(faces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default="runs")
    parser.add_argument("overrides", nargs="*", help="more key=value overrides for `gankit train`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "faces"
        print(f"wrote {write_lfw_faces(folder)} face JPEGs into {folder}")
        command = [sys.executable, "-m", "gankit", "train", "dcgan-mnist", "data.name=imagefolder",
                   f"data.path={folder}", f"data.root={tmp}", "data.resolution=64", "data.channels=3",
                   f"train.steps={args.steps}", "train.batch_size=32", "train.log_every=50",
                   f"train.sample_every={args.steps}", f"train.checkpoint_every={args.steps}",
                   *args.overrides, "--out", args.out, "--name", "faces-dcgan64"]
        print("$ gankit " + " ".join(command[3:]), flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
