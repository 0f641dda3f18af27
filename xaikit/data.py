"""Dataset discovery and decoding for the Kaggle "Chest X-Ray Images (Pneumonia)" layout.

This module is the project's only reader of image files: discovery lists and hashes them,
decoding turns them into uint8 grayscale arrays of one configured size. Everything after
this works on arrays.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import DataError

CLASSES = ("NORMAL", "PNEUMONIA")          # label 0, label 1
SPLITS = ("train", "val", "test")
REQUIRED_SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
LAYOUT = ("<root>/train/{NORMAL,PNEUMONIA}/*.jpeg and <root>/test/{NORMAL,PNEUMONIA}/*.jpeg "
          "(val/ optional)")
KAGGLE = "https://www.kaggle.com/datasets/paultimothymooney/chest-xray-pneumonia"


@dataclass(frozen=True)
class ImageRecord:
    relpath: str      # relative to the dataset root, with forward slashes
    split: str        # train, val or test (as found on disk)
    label: int        # 0 = NORMAL, 1 = PNEUMONIA
    nbytes: int
    sha1: str

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Listing:
    root: str
    records: tuple[ImageRecord, ...]
    ignored: tuple[str, ...] = ()     # non-image and hidden files
    empty: tuple[str, ...] = ()       # 0-byte image files (skipped)

    def digest(self) -> str:
        """Content hash of the listing: paths, labels and file hashes (not mtimes)."""
        h = hashlib.sha256()
        for r in self.records:
            h.update(f"{r.relpath}\t{r.label}\t{r.sha1}\n".encode())
        return h.hexdigest()[:16]

    def split(self, name: str) -> tuple[ImageRecord, ...]:
        return tuple(r for r in self.records if r.split == name)


def _find_dir(parent: Path, name: str) -> Path | None:
    """Child directory of ``parent`` whose name matches ``name`` case-insensitively."""
    matches = [p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
    return matches[0] if matches else None


def resolve_root(root: str | os.PathLike) -> Path:
    """Return the folder holding train/ and test/, descending into one nested chest_xray/."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"data folder {path} does not exist; expected {LAYOUT}: download "
                        f"\"Chest X-Ray Images (Pneumonia)\" from {KAGGLE}, unpack it and pass "
                        "--data or set XAIKIT_DATA")
    if not path.is_dir():
        raise DataError(f"data path {path} is a file; expected a folder with {LAYOUT}")
    if _find_dir(path, "train") is None:
        nested = _find_dir(path, "chest_xray")
        if nested is not None and _find_dir(nested, "train") is not None:
            return nested
    return path


def check_layout(root: str | os.PathLike) -> Path:
    """The dataset folder (see :func:`resolve_root`) after checking that train/ and test/ hold
    both class folders; raise :class:`DataError` naming what is missing. Reads no image."""
    base = resolve_root(root)
    for split in REQUIRED_SPLITS:
        split_dir = _find_dir(base, split)
        if split_dir is None:
            raise DataError(f"{base / split} is missing; expected {LAYOUT}")
        for cls in CLASSES:
            if _find_dir(split_dir, cls) is None:
                raise DataError(f"{split_dir / cls} is missing; expected class folders "
                                f"{'/'.join(CLASSES)} in {split_dir}")
    return base


def discover(root: str | os.PathLike, hash_cache: dict | None = None) -> Listing:
    """List and hash every image under ``root``; raise :class:`DataError` on a bad layout.

    ``hash_cache`` (relpath -> [size, mtime_ns, ctime_ns, inode, sha1]), when given, is read
    and updated in place: a file whose size, times and inode are all unchanged is not read
    again (as git's index does; any write, ``touch`` or copy changes ctime or the inode, so
    the file is hashed again). The listing is the same with or without it."""
    base = check_layout(root)
    records: list[ImageRecord] = []
    ignored: list[str] = []
    empty: list[str] = []
    for split in SPLITS:
        split_dir = _find_dir(base, split)
        if split_dir is None:      # only the optional val/ can be missing here
            continue
        for label, cls in enumerate(CLASSES):
            cls_dir = _find_dir(split_dir, cls)
            if cls_dir is None:
                continue
            count = unread = 0
            prefix = cls_dir.relative_to(base).as_posix()
            for parts, entry in _files(cls_dir):
                rel = "/".join((prefix, *parts))
                name = parts[-1]
                if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                    ignored.append(rel)
                    continue
                try:
                    nbytes, sha1 = _hash(entry, rel, hash_cache)
                except OSError as exc:
                    ignored.append(f"{rel} (unreadable: {exc.strerror})")
                    unread += 1
                    continue
                if not nbytes:
                    empty.append(rel)
                    unread += 1
                    continue
                records.append(ImageRecord(rel, split, label, nbytes, sha1))
                count += 1
            if count == 0 and split in REQUIRED_SPLITS:
                if unread:
                    raise DataError(f"{cls_dir}: none of its {unread} image files could be read "
                                    "(empty or not readable); expected readable "
                                    f"{'/'.join(IMAGE_SUFFIXES)} chest X-rays")
                raise DataError(f"{cls_dir} holds no images; expected "
                                f"{'/'.join(IMAGE_SUFFIXES)} files")
    return Listing(str(base), tuple(records), tuple(ignored), tuple(empty))


def _files(folder: Path) -> list[tuple[tuple[str, ...], os.DirEntry]]:
    """Files under ``folder`` (recursively, symlinked folders not followed) as (path parts
    below ``folder``, entry), in the order of ``sorted(folder.rglob("*"))``."""
    out = []

    def walk(path: str, parts: tuple[str, ...]) -> None:
        with os.scandir(path) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, parts + (entry.name,))
                elif not entry.is_dir():         # a symlink to a folder is skipped, as before
                    out.append((parts + (entry.name,), entry))

    walk(str(folder), ())
    return sorted(out, key=lambda item: item[0])


def _hash(entry: os.DirEntry, rel: str, cache: dict | None) -> tuple[int, str]:
    """(size, sha1) of a file, from ``cache`` when its stat is unchanged (see :func:`discover`)."""
    st = entry.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    known = cache.get(rel) if cache is not None else None
    if known is not None and list(known[:4]) == stamp:
        return st.st_size, known[4]
    with open(entry.path, "rb") as fh:
        data = fh.read()
    if not data:
        return 0, ""
    sha1 = hashlib.sha1(data).hexdigest()
    if cache is not None:
        cache[rel] = stamp + [sha1]
    return len(data), sha1


@dataclass(frozen=True)
class Decoded:
    """Decoded images (uint8, N x size x size) with per-image facts about the originals."""

    records: tuple[ImageRecord, ...]
    images: np.ndarray
    width: np.ndarray      # original width in pixels
    height: np.ndarray     # original height in pixels
    mode: tuple[str, ...]  # original PIL mode (L, RGB, ...)
    failed: tuple[str, ...] = field(default=())   # "relpath: reason" for skipped files


def _to_gray(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        flat = Image.new("RGBA", im.size, (0, 0, 0, 255))
        im = Image.alpha_composite(flat, im)
    if im.mode == "CMYK":
        im = im.convert("RGB")
    return im.convert("L")


def decode_bytes(data: bytes, size: int) -> tuple[np.ndarray, int, int, str]:
    """Decode one image file's bytes to a ``size x size`` uint8 grayscale array.

    A truncated file raises ``OSError`` even when another library (WeasyPrint does) has set
    Pillow's process-wide ``LOAD_TRUNCATED_IMAGES``.
    """
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        return _decode(data, size)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


class ImageTooLarge(ValueError):
    """An image whose header declares more pixels than Pillow's decompression-bomb limit."""


def _decode(data: bytes, size: int) -> tuple[np.ndarray, int, int, str]:
    try:
        with warnings.catch_warnings():
            # above MAX_IMAGE_PIXELS Pillow only warns, and would then decode it all
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"{exc}".split(" could be")[0].rstrip(".,")) from None
    with im:
        width, height, mode = im.width, im.height, im.mode
        if im.format == "JPEG":
            im.draft("L", (size * 2, size * 2))   # fast DCT downscale for large originals
        im.load()
        gray = _to_gray(im)
        resized = gray.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.asarray(resized, dtype=np.uint8), width, height, mode


def decode_listing(listing: Listing, size: int,
                   records: tuple[ImageRecord, ...] | None = None) -> Decoded:
    """Decode ``records`` (default: all) to ``size`` px; unreadable files are skipped."""
    records = listing.records if records is None else records
    base = Path(listing.root)
    images, widths, heights, modes, kept, failed = [], [], [], [], [], []
    for rec in records:
        try:
            arr, w, h, mode = decode_bytes((base / rec.relpath).read_bytes(), size)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            reason = re.sub(r" <_io\.BytesIO object at 0x[0-9a-f]+>", "", str(exc))
            failed.append(f"{rec.relpath}: {type(exc).__name__}: {reason}")
            continue
        images.append(arr)
        widths.append(w)
        heights.append(h)
        modes.append(mode)
        kept.append(rec)
    stack = np.stack(images) if images else np.zeros((0, size, size), np.uint8)
    return Decoded(tuple(kept), stack, np.asarray(widths), np.asarray(heights), tuple(modes),
                   tuple(failed))


_PATIENT_PATTERNS = (
    re.compile(r"^(person\d+)_", re.IGNORECASE),
    re.compile(r"^(NORMAL2-IM-\d+)-", re.IGNORECASE),
    re.compile(r"^(IM-\d+)-", re.IGNORECASE),
)


def patient_id(file_name: str) -> str:
    """Patient-like id from a Kaggle file name (``person12_virus_3.jpeg`` -> ``person12``).

    Names that match no known pattern are their own group (the stem).
    """
    for pattern in _PATIENT_PATTERNS:
        m = pattern.match(file_name)
        if m:
            return m.group(1)
    return file_name.rsplit(".", 1)[0]


def grouped_stratified_split(labels: np.ndarray, groups: list[str], fraction: float,
                             seed: int) -> np.ndarray:
    """Boolean mask of the validation part: whole groups, about ``fraction`` of each class.

    Groups (patients) are shuffled with ``seed`` per class and taken until the class's
    validation quota is met, so no patient is in both parts.
    """
    labels = np.asarray(labels)
    if len(labels) != len(groups):
        raise ValueError(f"labels and groups differ in length: {len(labels)} vs {len(groups)}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        names = sorted({groups[i] for i in idx})
        order = rng.permutation(len(names))
        quota = int(round(fraction * len(idx)))
        members: dict[str, list[int]] = {}
        for i in idx:
            members.setdefault(groups[i], []).append(i)
        taken = 0
        for j in order:
            if taken >= quota:
                break
            chosen = members[names[j]]
            mask[chosen] = True
            taken += len(chosen)
    return mask


def kaggle_val_leaks(source, names) -> np.ndarray:
    """Boolean mask of the images of the Kaggle ``val/`` folder whose patient id (:func:`patient_id`
    of the file name, as the train/val split groups them) also occurs among the ``train/`` images."""
    source = np.asarray(source, dtype=str)
    if len(source) != len(names):
        raise ValueError(f"source and names differ in length: {len(source)} vs {len(names)}")
    pids = [patient_id(str(n).rsplit("/", 1)[-1]) for n in names]
    in_train = {pid for pid, s in zip(pids, source) if s == "train"}
    return np.array([s == "val" and pid in in_train for pid, s in zip(pids, source)], dtype=bool)


@dataclass(frozen=True)
class Splits:
    """The splits as used, per image, and which Kaggle ``val/`` images were regrouped."""

    split: np.ndarray       # "train", "val", "test" or "unused" (val/ images when data.use_kaggle_val is off)
    regrouped: np.ndarray   # val/ images that joined the train/ pool: their patient id also occurs in train/

    @property
    def regrouped_images(self) -> int:
        return int(self.regrouped.sum())


def assign_splits(source, labels, names, fraction: float, seed: int, use_kaggle_val: bool) -> Splits:
    """Train / validation / test per image from the folder each was found in (``source``).

    Validation is carved out of the train/ pool by whole patient ids (:func:`grouped_stratified_split`
    with ``fraction`` and ``seed``). The Kaggle val/ images, when used, join validation, except those
    whose patient id also occurs in train/: they join the train/ pool *before* the carve-out, so each
    such patient lands whole on one side and validation stays patient-disjoint from training. Without
    such images (or without val/) the pool, and so the split, is train/ alone. Unused val/ images are
    "unused" and regroup nothing.
    """
    source = np.asarray(source, dtype=str)
    labels = np.asarray(labels)
    if not len(source) == len(labels) == len(names):
        raise ValueError(f"source, labels and names differ in length: {len(source)}, {len(labels)}, {len(names)}")
    unknown = sorted(set(source.tolist()) - set(SPLITS))
    if unknown:
        raise ValueError(f"source expects split folders {SPLITS}, got {unknown}")
    regrouped = kaggle_val_leaks(source, names) if use_kaggle_val else np.zeros(len(source), bool)
    split = np.array([("train" if r else s) if s != "val" or use_kaggle_val else "unused"
                      for s, r in zip(source.tolist(), regrouped)], dtype="<U6")
    pool = np.flatnonzero(split == "train")
    groups = [patient_id(str(names[i]).rsplit("/", 1)[-1]) for i in pool]
    split[pool[grouped_stratified_split(labels[pool], groups, fraction, seed)]] = "val"
    return Splits(split, regrouped)


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of ``size`` items with the class proportions kept."""
    labels = np.asarray(labels)
    if size >= len(labels) or size <= 0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        k = int(round(size * len(idx) / len(labels)))
        chosen.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(chosen))
