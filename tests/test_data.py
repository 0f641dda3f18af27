import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xaikit import data
from xaikit.errors import DataError

from .conftest import chest_like, make_dataset, study_toml, write_image


def test_discover_generated(generated):
    listing = data.discover(generated)
    assert len(listing.split("train")) == 24 and len(listing.split("test")) == 12
    assert {r.label for r in listing.records} == {0, 1}
    assert {r.relpath.split("/")[0] for r in listing.records} == {"train", "test"}
    assert all(r.relpath.split("/")[1] == ("PNEUMONIA" if r.label else "NORMAL") for r in listing.records)


def test_digest_changes_with_content_not_with_touch(generated):
    before = data.discover(generated).digest()
    f = next((generated / "train" / "NORMAL").iterdir())
    f.touch()
    assert data.discover(generated).digest() == before
    f.write_bytes(f.read_bytes() + b"\0")
    assert data.discover(generated).digest() != before


def test_ignores_non_images_and_counts_empty(generated):
    (generated / "train" / "NORMAL" / ".DS_Store").write_bytes(b"junk")
    (generated / "train" / "NORMAL" / "notes.txt").write_text("x")
    (generated / "train" / "PNEUMONIA" / "empty.jpeg").write_bytes(b"")
    listing = data.discover(generated)
    assert len(listing.ignored) == 2
    assert listing.empty == ("train/PNEUMONIA/empty.jpeg",)
    assert len(listing.split("train")) == 24


def test_case_insensitive_folders_and_nested_root(tmp_path):
    root = tmp_path / "download" / "chest_xray"
    make_dataset(root)
    (root / "train" / "NORMAL").rename(root / "train" / "normal")
    (root / "test" / "PNEUMONIA").rename(root / "test" / "Pneumonia")
    listing = data.discover(tmp_path / "download")   # one level above, as Kaggle's zip unpacks
    assert len(listing.records) == 36


@pytest.mark.parametrize("breakage, fragment", [
    (lambda r: None, None),
    (lambda r: __import__("shutil").rmtree(r / "test"), "test is missing"),
    (lambda r: __import__("shutil").rmtree(r / "train" / "NORMAL"), "NORMAL is missing"),
    (lambda r: [f.unlink() for f in (r / "test" / "PNEUMONIA").iterdir()], "holds no images"),
])
def test_layout_errors_name_the_path(generated, breakage, fragment):
    breakage(generated)
    if fragment is None:
        data.discover(generated)
        return
    with pytest.raises(DataError) as info:
        data.discover(generated)
    assert fragment in str(info.value) and str(generated) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_file_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.discover(tmp_path / "nope")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        data.discover(f)


def _png_bytes(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("make", [
    lambda a: Image.fromarray(a, "L"),
    lambda a: Image.fromarray(a, "L").convert("RGB"),
    lambda a: Image.fromarray(a, "L").convert("RGBA"),
    lambda a: Image.fromarray(a.astype(np.uint16) * 257),
])
def test_decode_modes_to_same_gray(make):
    arr = chest_like(np.random.default_rng(0), 80, False)
    out, w, h, _ = data.decode_bytes(_png_bytes(make(arr)), 32)
    ref, *_ = data.decode_bytes(_png_bytes(Image.fromarray(arr, "L")), 32)
    assert out.shape == (32, 32) and out.dtype == np.uint8 and (w, h) == (80, 80)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2


def test_decode_cmyk_jpeg_and_large():
    arr = chest_like(np.random.default_rng(0), 1200, True)
    cmyk = Image.fromarray(arr, "L").convert("CMYK")
    out, w, h, mode = data.decode_bytes(_png_bytes(cmyk, "JPEG"), 64)
    ref, *_ = data.decode_bytes(_png_bytes(Image.fromarray(arr, "L"), "JPEG"), 64)
    assert out.shape == (64, 64) and mode == "CMYK" and w == 1200
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 8   # not inverted, not garbled


@pytest.mark.parametrize("load_truncated", [False, True])
def test_decode_listing_skips_corrupt(generated, load_truncated, monkeypatch):
    from PIL import ImageFile
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)   # as WeasyPrint sets it
    bad = generated / "train" / "NORMAL" / "broken.jpeg"
    good = next((generated / "train" / "NORMAL").glob("*.jpeg")).read_bytes()
    bad.write_bytes(good[: len(good) // 3])
    (generated / "train" / "NORMAL" / "text.jpeg").write_text("not an image")
    listing = data.discover(generated)
    dec = data.decode_listing(listing, 32)
    assert len(dec.failed) == 2 and all("NORMAL" in f for f in dec.failed)
    assert dec.images.shape == (len(listing.records) - 2, 32, 32)


def test_patient_id():
    assert data.patient_id("person12_virus_3.jpeg") == "person12"
    assert data.patient_id("IM-0115-0001.jpeg") == "IM-0115"
    assert data.patient_id("NORMAL2-IM-1427-0001.jpeg") == "NORMAL2-IM-1427"
    assert data.patient_id("odd.png") == "odd"


def test_grouped_split_keeps_patients_together_and_is_seeded():
    rng = np.random.default_rng(0)
    groups = [f"p{rng.integers(0, 60)}" for _ in range(400)]
    labels = np.array([int(g[1:]) % 3 == 0 for g in groups], int)
    mask = data.grouped_stratified_split(labels, groups, 0.2, seed=5)
    val = {g for g, m in zip(groups, mask) if m}
    train = {g for g, m in zip(groups, mask) if not m}
    assert not val & train
    for k in (0, 1):
        share = mask[labels == k].mean()
        assert 0.12 < share < 0.35
    assert np.array_equal(mask, data.grouped_stratified_split(labels, groups, 0.2, seed=5))
    assert not np.array_equal(mask, data.grouped_stratified_split(labels, groups, 0.2, seed=6))


def test_stratified_subset_keeps_proportions():
    labels = np.array([0] * 300 + [1] * 700)
    idx = data.stratified_subset(labels, 100, seed=1)
    assert len(np.unique(idx)) == len(idx)              # drawn without replacement
    assert len(idx) == 100 and labels[idx].sum() == 70
    assert np.array_equal(idx, data.stratified_subset(labels, 100, seed=1))


def test_write_helper_roundtrip(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    assert (tmp_path / "a.png").exists()


def _three_images_per_patient(root: Path, rng) -> None:
    """12 training and 2 test patient ids per class, three images each (Kaggle-like names)."""
    for split, patients in (("train", range(12)), ("test", range(100, 102))):
        for p in patients:
            for k in range(1, 4):
                write_image(root / split / "NORMAL" / f"IM-{p:04d}-{k:04d}.jpeg", chest_like(rng, 40, False))
                write_image(root / split / "PNEUMONIA" / f"person{p}_bacteria_{k}.jpeg", chest_like(rng, 40, True))


def test_pipeline_split_keeps_each_patients_images_together(tmp_path):
    """The validation split as the build makes it (report.context.prepare), on a dataset where
    every patient has several images. Catches: splitting by image instead of by patient id (a
    leak that fixtures with one image per patient cannot show), and a val split without a class."""
    from report.context import prepare
    from xaikit.config import load_config
    root = tmp_path / "chest_xray"
    _three_images_per_patient(root, np.random.default_rng(0))
    text = study_toml()
    cfg = load_config(text, overrides=["data.image_size=32", "data.val_fraction=0.25"])
    prep = prepare(data.discover(root), cfg)
    pid = np.array([data.patient_id(Path(n).name) for n in prep.names])
    train_ids, val_ids = set(pid[prep.split == "train"]), set(pid[prep.split == "val"])
    assert val_ids and not (train_ids & val_ids)
    assert set(prep.labels[prep.split == "val"]) == {0, 1}
    for p in val_ids:                                   # all three images of a val patient are in val
        assert np.sum(pid == p) == 3 and set(prep.split[pid == p]) == {"val"}


def _kaggle_with_val(root: Path) -> dict[str, int]:
    """A Kaggle layout whose val/ folder shares patient ids with train/: NORMAL IM-0003 and PNEUMONIA
    person5 have images in both, IM-0200 and person200 only in val/. Returns shared val/ images per id."""
    rng = np.random.default_rng(1)
    _three_images_per_patient(root, rng)
    for k in (7, 8):     # Kaggle numbers val/ files on: same patient id, other image numbers
        write_image(root / "val" / "NORMAL" / f"IM-0003-{k:04d}.jpeg", chest_like(rng, 40, False))
    write_image(root / "val" / "PNEUMONIA" / "person5_virus_9.jpeg", chest_like(rng, 40, True))
    write_image(root / "val" / "NORMAL" / "IM-0200-0001.jpeg", chest_like(rng, 40, False))
    write_image(root / "val" / "PNEUMONIA" / "person200_bacteria_1.jpeg", chest_like(rng, 40, True))
    return {"IM-0003": 2, "person5": 1}


def _check_no_leak(split, names, shared: dict) -> dict:
    pid = np.array([data.patient_id(Path(n).name) for n in names])
    assert not set(pid[split == "train"]) & set(pid[split == "val"])
    for p in ("IM-0200", "person200"):              # val/-only patients stay in validation
        assert set(split[pid == p]) == {"val"}
    sides = {}
    for p, n_val in shared.items():                  # a shared patient lands whole on one side
        side = set(split[pid == p].tolist())
        assert len(side) == 1 and np.sum(pid == p) == 3 + n_val
        sides[p] = side.pop()
    return sides


def test_kaggle_val_sharing_a_patient_with_train_never_leaks(tmp_path):
    """A Kaggle layout whose val/ shares patient ids with train/, split as the build does
    (report.context.prepare) and, over 30 seeds, by xaikit.data.assign_splits. Catches: val/ added
    to validation without the patient check (IM-0003's val/ images in validation while its train/
    images train), and regrouped images appended to training after the carve-out (the carve-out
    then puts the rest of that patient in validation for some seeds)."""
    from report.context import prepare
    from xaikit.config import load_config
    root = tmp_path / "chest_xray"
    shared = _kaggle_with_val(root)
    listing = data.discover(root)
    text = study_toml()
    for seed in (0, 23):                             # the build's path
        cfg = load_config(text, overrides=["data.image_size=32", "data.val_fraction=0.25", f"data.seed={seed}"])
        prep = prepare(listing, cfg)
        _check_no_leak(prep.split, prep.names, shared)
        s = data.assign_splits(prep.source_split, prep.labels, prep.names, 0.25, seed, True)
        assert np.array_equal(s.split, prep.split) and s.regrouped_images == sum(shared.values())
        assert {data.patient_id(Path(n).name) for n in prep.names[s.regrouped]} == set(shared)
    source = [r.split for r in listing.records]
    labels = np.array([r.label for r in listing.records])
    names = [r.relpath for r in listing.records]
    seen = {p: set() for p in shared}
    for seed in range(30):
        sides = _check_no_leak(data.assign_splits(source, labels, names, 0.25, seed, True).split, names, shared)
        for p, side in sides.items():
            seen[p].add(side)
    assert all(v == {"train", "val"} for v in seen.values())   # the carve-out draws them either way
    off = prepare(listing, load_config(text, overrides=["data.image_size=32", "data.use_kaggle_val=false"]))
    assert set(off.split[off.source_split == "val"]) == {"unused"}
    assert not data.assign_splits(off.source_split, off.labels, off.names, 0.1, 42, False).regrouped.any()


def test_without_val_the_split_is_the_grouped_carve_out_of_train():
    """The default build must not change on data without val/ (the shared copy): the split equals
    grouped_stratified_split over train/ alone. Catches: a pool built in another order or from other
    images when nothing is regrouped."""
    rng = np.random.default_rng(3)
    names = [f"train/NORMAL/IM-{rng.integers(0, 40):04d}-{k:04d}.jpeg" for k in range(120)] + \
            [f"test/NORMAL/IM-{500 + k:04d}-0001.jpeg" for k in range(10)]
    source = ["train"] * 120 + ["test"] * 10
    labels = rng.integers(0, 2, 130)
    s = data.assign_splits(source, labels, names, 0.2, 9, True)
    mask = data.grouped_stratified_split(labels[:120], [data.patient_id(Path(n).name) for n in names[:120]], 0.2, 9)
    assert np.array_equal(s.split[:120] == "val", mask) and set(s.split[120:]) == {"test"}
    assert not s.regrouped.any()
    with pytest.raises(ValueError, match="split folders"):
        data.assign_splits(["train", "validation"], [0, 1], ["a", "b"], 0.2, 0, True)


def test_q1_counts_the_regrouped_val_images(tmp_path):
    """Q1's numbers behind the preprocessing sentence. Catches: counting every val/ image, or images
    instead of patient ids."""
    from report.context import prepare
    from report.q1_data import kaggle_val_numbers
    from xaikit.config import load_config
    root = tmp_path / "chest_xray"
    shared = _kaggle_with_val(root)
    text = study_toml()
    prep = prepare(data.discover(root), load_config(text, overrides=["data.image_size=32"]))
    k = kaggle_val_numbers(prep.source_split, prep.split, prep.names, True)
    assert k["images"] == 5 and k["regrouped_images"] == 3 and k["regrouped_patients"] == len(shared)
    assert k["any_regrouped"] and k["regrouped_in_train"] + k["regrouped_in_val"] == 3
    assert k["use"] == "added"
    off = kaggle_val_numbers(prep.source_split, prep.split, prep.names, False)
    assert off["regrouped_images"] == 0 and off["use"] == "unused"
    none = prep.source_split != "val"
    assert kaggle_val_numbers(prep.source_split[none], prep.split[none], prep.names[none], True)["use"] == "absent"


def test_hash_cache_skips_unchanged_files_and_sees_any_write(generated):
    # catches: a cache never consulted (every build reads 1.2 GB), or one trusted on mtime alone
    import os
    cache: dict = {}
    first = data.discover(generated, hash_cache=cache)
    assert len(cache) == len(first.records)
    assert data.discover(generated, hash_cache=cache) == first
    rel = first.records[0].relpath
    cache[rel] = cache[rel][:4] + ["cached-not-read"]          # stat unchanged: not read again
    assert data.discover(generated, hash_cache=cache).records[0].sha1 == "cached-not-read"
    f = generated / rel
    st = f.stat()
    body = bytearray(f.read_bytes())
    body[-3] ^= 0xFF                                           # same size, restored mtime
    f.write_bytes(bytes(body))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = data.discover(generated, hash_cache=cache)
    assert again.records[0].sha1 == data.discover(generated).records[0].sha1 != first.records[0].sha1
