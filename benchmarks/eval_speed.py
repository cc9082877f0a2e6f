"""Evaluation speed, by hand (never in timed tests): `python benchmarks/eval_speed.py`.

1. Inception feature extraction, img/s, on the same images: gankit's path (torch-fidelity's
   layers with BN folded into the convolutions, the TF1 resize as matmuls, channels_last,
   inference_mode, pool + logits in one pass) against
   torch-fidelity's own path (`get_featuresdict_from_dataset`). Goal: >= 1.5x.
2. The Fréchet distance in 2048-d: gankit's eigendecomposition against pytorch-fid's
   `calculate_frechet_distance` (scipy.linalg.sqrtm). Goal: >= 5x faster, equal values.

Without --weights it uses the standard file from the torch cache when present; otherwise it
writes a random-weight Inception (tests/inception_weights.py), which runs at the same speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def weights_file(path: str | None) -> tuple[Path, str]:
    from gankit.metrics.inception import default_weights_path

    if path:
        return Path(path), "given"
    if default_weights_path().is_file():
        return default_weights_path(), "standard"
    sys.path.insert(0, str(ROOT / "tests"))
    from inception_weights import write_random_inception

    return write_random_inception(Path(tempfile.mkdtemp()) / "random-inception.pth"), "random (same speed)"


def inception_speed(weights: Path, n: int, batch_size: int) -> None:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.utils import get_featuresdict_from_dataset

    from gankit.metrics.inception import InceptionBackbone

    images = torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            return images[i]

    theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                         feature_extractor_weights_path=str(weights))
    ours = InceptionBackbone(weights, batch_size=batch_size)
    ours(images[:batch_size].float() / 127.5 - 1)  # warm-up both (oneDNN primitive caches)
    get_featuresdict_from_dataset(torch.utils.data.Subset(Images(), range(batch_size)), theirs, batch_size,
                                  cuda=False, save_cpu_ram=True, verbose=False)
    started = time.perf_counter()
    reference = get_featuresdict_from_dataset(Images(), theirs, batch_size, cuda=False, save_cpu_ram=True,
                                              verbose=False)
    theirs_s = time.perf_counter() - started
    started = time.perf_counter()
    features = ours(images.float() / 127.5 - 1)
    ours_s = time.perf_counter() - started
    diff = (features["pool"] - reference["2048"]).abs().max().item()
    print(f"Inception features, {n} images of 32x32 (resized to 299), batch {batch_size}, "
          f"{torch.get_num_threads()} threads:")
    print(f"  torch-fidelity's path: {n / theirs_s:6.2f} img/s")
    print(f"  gankit's path:         {n / ours_s:6.2f} img/s   ({theirs_s / ours_s:.2f}x; max |pool diff| {diff:.2e})")


def frechet_speed(dim: int, n: int) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    from gankit.metrics.stats import feature_statistics, frechet_distance

    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(dim, dim, generator=g) / dim ** 0.5
    a = feature_statistics(torch.randn(n, dim, generator=g) @ mixing)
    b = feature_statistics(torch.randn(n, dim, generator=g) @ mixing * 1.1 + 0.05)
    started = time.perf_counter()
    ours = frechet_distance(a, b)
    ours_s = time.perf_counter() - started
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pytorch-fid's sqrtm(disp=False)
        started = time.perf_counter()
        theirs = calculate_frechet_distance(a.mean, a.cov, b.mean, b.cov)
        theirs_s = time.perf_counter() - started
    print(f"Frechet distance in {dim}-d (statistics of {n} samples):")
    print(f"  scipy.linalg.sqrtm (pytorch-fid): {theirs_s:7.2f} s   value {theirs:.6f}")
    print(f"  gankit eigh:                      {ours_s:7.2f} s   value {ours:.6f}   "
          f"({theirs_s / ours_s:.1f}x faster; relative difference {abs(ours - theirs) / abs(theirs):.1e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="Inception weights file [default: torch cache or random]")
    parser.add_argument("--n", type=int, default=256, help="images for the feature benchmark")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--only", choices=["inception", "frechet"], default=None, help="run one part only")
    args = parser.parse_args()
    if args.only != "frechet":
        weights, kind = weights_file(args.weights)
        print(f"Inception weights: {weights} ({kind})", flush=True)
        inception_speed(weights, args.n, args.batch_size)
    if args.only != "inception":
        frechet_speed(args.dim, 4 * args.dim)


if __name__ == "__main__":
    main()
