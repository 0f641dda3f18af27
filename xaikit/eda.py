"""Exploratory statistics of the dataset (pure functions over arrays and records)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .data import ImageRecord, patient_id


def sharpness(images: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian per image (uint8 or float N x H x W), on a 0-255 scale."""
    x = np.asarray(images, np.float64)
    if x.max() <= 1.0:
        x = x * 255.0
    return np.array([ndimage.laplace(im).var() for im in x])


@dataclass(frozen=True)
class Duplicates:
    groups_within: int        # groups of identical files inside one split
    files_within: int         # files in those groups
    groups_across: int        # groups spanning two splits
    groups_cross_class: int   # groups whose files carry different labels
    examples: tuple[tuple[str, ...], ...]


def duplicates(records: tuple[ImageRecord, ...]) -> Duplicates:
    """Byte-identical files by content hash, within and across splits and classes."""
    by_hash: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in records:
        by_hash[r.sha1].append(r)
    groups = [g for g in by_hash.values() if len(g) > 1]
    within = [g for g in groups if len({r.split for r in g}) == 1]
    across = [g for g in groups if len({r.split for r in g}) > 1]
    cross_class = [g for g in groups if len({r.label for r in g}) > 1]
    examples = tuple(tuple(r.relpath for r in g) for g in groups[:5])
    return Duplicates(len(within), sum(len(g) for g in within), len(across), len(cross_class),
                      examples)


@dataclass(frozen=True)
class Patients:
    per_split: dict            # split -> number of distinct patient ids
    images_per_patient: dict   # class name -> mean images per patient id (train)
    max_images: int            # most images of one patient id
    overlap: dict              # "train-test" etc. -> patient ids in both


def patients(records: tuple[ImageRecord, ...], split_of: dict[str, str] | None = None) -> Patients:
    """Patient-like ids from file names; ``split_of`` maps relpath -> split name to use."""
    ids: dict[str, set] = defaultdict(set)
    counts: dict[int, Counter] = defaultdict(Counter)
    for r in records:
        split = split_of.get(r.relpath, r.split) if split_of else r.split
        pid = f"{r.label}:{patient_id(r.name)}"
        ids[split].add(pid)
        if split == "train":
            counts[r.label][pid] += 1
    names = ("NORMAL", "PNEUMONIA")
    per_class = {names[k]: float(np.mean(list(c.values()))) if c else 0.0 for k, c in counts.items()}
    most = max((max(c.values()) for c in counts.values() if c), default=0)
    splits = sorted(ids)
    overlap = {f"{a}-{b}": len(ids[a] & ids[b]) for i, a in enumerate(splits) for b in splits[i + 1:]}
    return Patients({s: len(v) for s, v in ids.items()}, per_class, int(most), overlap)
