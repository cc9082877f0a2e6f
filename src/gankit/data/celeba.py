"""CelebA (Liu, Luo, Wang & Tang 2015, "Deep learning face attributes in the wild"), aligned faces.

The layout is torchvision's: `DATA_ROOT/celeba/img_align_celeba/*.jpg` (178x218 px, eyes
aligned), `list_eval_partition.txt` (`000001.jpg 0` per line: 0 train, 1 valid, 2 test) and,
for attribute labels, `list_attr_celeba.txt`. Kaggle's copy (the folder nested in itself, and
.csv lists) reads the same. A subset of the images (such as a 30k-face folder with the full
partition file) is fine: listed images that are absent are counted and skipped.

The standard 64 px preprocessing is a centred square crop of the aligned image, then a resize.
The default crop, 108 px, is the one of carpedm20's DCGAN-tensorflow (Kim 2016) that most
CelebA GAN results since use; `data.center_crop` changes it (140 and 178 are also common).

Attributes as labels: `data.attributes=[Male,Smiling]` labels each face with the integer whose
bit i is attribute i (so 2**k classes for k attributes): here 0 = neither, 1 = male,
2 = smiling, 3 = both.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gankit.data import register_dataset, sources
from gankit.data.images import Preprocess, first_paths, warn
from gankit.errors import GankitError

DEFAULT_CROP = 108  # px of the aligned 178x218 image; DCGAN-tensorflow's CelebA crop
PARTITION = {"train": "0", "test": "2"}


def _rows(path: Path) -> list[list[str]]:
    """Fields per line of a CelebA list file: torchvision's space-separated .txt or Kaggle's .csv."""
    split = (lambda line: line.split(",")) if path.suffix == ".csv" else str.split
    return [split(line) for line in path.read_text().splitlines() if line.strip()]


def read_partition(path: Path) -> dict[str, str]:
    """{file name: partition digit} from list_eval_partition.txt (or Kaggle's .csv, with a header)."""
    return {row[0]: row[1].strip() for row in _rows(path) if row[1].strip().isdigit()}


def read_attributes(path: Path) -> tuple[list[str], dict[str, list[int]]]:
    """(attribute names, {file name: [+1/-1 per attribute]}) from list_attr_celeba.txt.

    The .txt's first line is the image count and its second the 40 attribute names; Kaggle's
    .csv has one header line, `image_id,5_o_Clock_Shadow,...`.
    """
    rows = _rows(path)
    names, body = ([n.strip() for n in rows[0][1:]], rows[1:]) if path.suffix == ".csv" else (rows[1], rows[2:])
    return names, {row[0]: [int(v) for v in row[1:]] for row in body}


def find_file(folder: Path, stem: str) -> Path:
    """torchvision's `stem.txt`, else Kaggle's `stem.csv`; the .txt path when neither exists."""
    txt, csv = folder / f"{stem}.txt", folder / f"{stem}.csv"
    return csv if not txt.is_file() and csv.is_file() else txt


def attribute_labels(folder: Path, files: list[str], wanted: list[str]) -> torch.Tensor:
    """(N,) int64: bit i set when attribute wanted[i] is +1 for that face."""
    path = find_file(folder, "list_attr_celeba")
    if not path.is_file():
        raise GankitError(f"data.attributes needs {path}; put CelebA's list_attr_celeba.txt there.")
    names, table = read_attributes(path)
    unknown = [a for a in wanted if a not in names]
    if unknown:
        raise GankitError(f"CelebA has no attribute {', '.join(unknown)}; choose from {', '.join(names)}.")
    columns = [names.index(a) for a in wanted]
    missing = [f for f in files if f not in table]
    if missing:
        raise GankitError(f"{path} has no row for {first_paths(missing)}; use the attribute file "
                          "that came with these images.")
    labels = [sum(1 << i for i, c in enumerate(columns) if table[f][c] == 1) for f in files]
    return torch.tensor(labels, dtype=torch.long)


@register_dataset("celeba")
def build_celeba(cfg):
    folder = Path(cfg.root) / "celeba"
    images_dir = folder / "img_align_celeba"
    if (images_dir / "img_align_celeba").is_dir():  # Kaggle's copy nests the folder in itself
        images_dir = images_dir / "img_align_celeba"
    partition_file = find_file(folder, "list_eval_partition")
    if cfg.download and not (images_dir.is_dir() and partition_file.is_file()):
        try:
            from torchvision.datasets import CelebA

            CelebA(cfg.root, split="all", target_type=[], download=True)  # Google Drive, needs gdown
        except Exception:
            pass  # the sentence below says what is still missing
    if not (images_dir.is_dir() and partition_file.is_file()):
        raise GankitError(
            f"CelebA is not in {folder}: put the aligned JPEGs in {images_dir}/ and list_eval_partition.txt "
            f"beside it (from the CelebA site or Kaggle), or add data.download=true (needs gdown)."
        )
    listed = sorted(name for name, part in read_partition(partition_file).items() if part == PARTITION[cfg.split])
    present = [name for name in listed if (images_dir / name).is_file()]
    if len(present) < len(listed):
        have = set(present)
        absent = [name for name in listed if name not in have]
        warn(f"{len(absent)} of the {len(listed)} {cfg.split} images listed in {partition_file} are not in "
             f"{images_dir} (first: {first_paths(absent)}); training on the {len(present)} present.")
    if not present:
        raise GankitError(f"none of the {cfg.split} images listed in {partition_file} is in {images_dir}; "
                          "put the aligned CelebA JPEGs there.")
    present = sources.limit(present, cfg)
    crop = cfg.center_crop if cfg.center_crop is not None else DEFAULT_CROP
    prep = Preprocess(cfg.resolution, cfg.channels, crop)
    path = sources.cache_files(cfg, "celeba", cfg.split, images_dir, [images_dir / n for n in present], prep)
    sources.report(path, images_dir, cfg.resolution)
    if not cfg.attributes:
        return sources.load(cfg, path, None, num_classes=0)
    kept = sources.read_cached_sources(path)  # unreadable files were skipped: label what is there
    labels = attribute_labels(folder, kept, list(cfg.attributes))
    return sources.load(cfg, path, labels, num_classes=2 ** len(cfg.attributes))
