"""A corpus of broken datasets, generated here: each gives a one-line error or a counted skip."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from report.build import make_context
from xaikit.errors import DataError

from .conftest import ROOT, chest_like, make_dataset

QUICK = ["data.image_size=48"]


def prepared(root, tmp_path):
    ctx = make_context(str(root), None, QUICK, None, tmp_path / "build")
    return ctx, ctx.prepared()


def cli(root):
    return subprocess.run([sys.executable, "-m", "invoke", "build-report", "--data", str(root),
                           "--build", str(root.parent / "build")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


ERRORS = {
    "missing folder": (lambda r: shutil.rmtree(r), "does not exist"),
    "file instead of folder": (lambda r: (shutil.rmtree(r), r.write_text("x")), "is a file"),
    "missing train": (lambda r: shutil.rmtree(r / "train"), "train is missing"),
    "missing test": (lambda r: shutil.rmtree(r / "test"), "test is missing"),
    "missing class": (lambda r: shutil.rmtree(r / "test" / "NORMAL"), "NORMAL is missing"),
    "empty class": (lambda r: [f.unlink() for f in (r / "train" / "PNEUMONIA").iterdir()], "holds no images"),
    # catches: "holds no images" for a folder that does hold .jpeg files, all of them empty
    "only empty files in a class": (
        lambda r: [f.write_bytes(b"") for f in (r / "train" / "PNEUMONIA").iterdir()],
        "PNEUMONIA: none of its 6 image files could be read"),
    "only broken images in a class": (
        lambda r: [f.write_bytes(b"not a jpeg") for f in (r / "test" / "NORMAL").iterdir()],
        "test/NORMAL: none of its 3 image files could be decoded"),
    # catches: "could not convert string to float: 'val'" when nothing decodes at all
    "only non-images in every class": (
        lambda r: [f.write_text("not an image") for f in r.rglob("*.jpeg")],
        "none of its 6 image files could be decoded"),
}


def _one_line(tmp_path, table, case, n_train, check=lambda root, tmp: prepared(root, tmp)):
    """Break a generated dataset as ``table[case]`` says and expect one DataError line with its fragment."""
    root = make_dataset(tmp_path / "d", per_class={"train": n_train, "test": 3})
    breakage, fragment = table[case]
    breakage(root)
    with pytest.raises(DataError) as info:
        check(root, tmp_path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_are_one_line(tmp_path, case):
    _one_line(tmp_path, ERRORS, case, 6)


def test_missing_data_names_where_it_comes_from(tmp_path):
    # catches: a fresh clone told only that data/chest_xray does not exist
    with pytest.raises(DataError) as info:
        prepared(tmp_path / "nowhere", tmp_path)
    assert "kaggle.com/datasets/paultimothymooney/chest-xray-pneumonia" in str(info.value)


def test_input_error_keeps_the_previous_report(tmp_path):
    # catches: the old report retired before the inputs were checked
    from report.build import build_report
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    build = tmp_path / "build"
    build.mkdir()
    (build / "report.html").write_text("an old report")
    (build / "report.pdf").write_bytes(b"%PDF old")
    for f in (root / "test" / "NORMAL").iterdir():
        f.write_bytes(b"")
    with pytest.raises(DataError):
        build_report(data=str(root), overrides=QUICK, build=build)
    assert (build / "report.html").read_text() == "an old report"
    assert (build / "report.pdf").read_bytes() == b"%PDF old"


def _keep_one(folder):
    for f in sorted(folder.iterdir())[1:]:
        f.unlink()


TOO_SMALL = {
    # one NORMAL training image: the validation quota rounds to 0, validation has no NORMAL
    "no NORMAL image left for validation": (lambda r: _keep_one(r / "train" / "NORMAL"),
                                            "the val split has 0 NORMAL"),
    "one test image of a class": (lambda r: _keep_one(r / "test" / "PNEUMONIA"),
                                  "the test split has 3 NORMAL and 1 PNEUMONIA"),
}


@pytest.mark.parametrize("case", list(TOO_SMALL))
def test_too_small_splits_are_one_line(tmp_path, case):
    # catches: a ValueError traceback from Youden's threshold or the consistency measure
    from report.build import check_splits
    _one_line(tmp_path, TOO_SMALL, case, 12, lambda root, tmp: check_splits(prepared(root, tmp)[0]))


def test_cli_error_exit_code(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    for f in (root / "test" / "NORMAL").iterdir():
        f.write_bytes(b"")
    r = cli(root)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len([l for l in r.stderr.splitlines() if l.startswith("xaikit: error")]) == 1


def _png_declaring(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR chunk (CRC fixed) declares ``width`` x ``height``."""
    import io
    import struct
    import zlib
    buf = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = 8 + 8                   # signature, then length and type of the first chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    return bytes(data)


def _save(path, im, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)


def test_odd_files_are_decoded_or_skipped_and_counted(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 6, "test": 3})
    n_dir = root / "train" / "NORMAL"
    arr = chest_like(np.random.default_rng(1), 64, False)
    good = next(n_dir.glob("*.jpeg"))
    # skipped: empty, truncated, text named .jpeg
    (n_dir / "empty.jpeg").write_bytes(b"")
    data = good.read_bytes()
    (n_dir / "truncated.jpeg").write_bytes(data[: len(data) // 2])
    (n_dir / "text.jpeg").write_text("hello")
    # ignored: hidden and non-image files
    (n_dir / ".DS_Store").write_bytes(b"\0\1")
    (n_dir / "Thumbs.db").write_bytes(b"\0")
    (n_dir / "notes.txt").write_text("x")
    # decoded: alpha PNG, 16-bit PNG, CMYK JPEG, 1x1, 4000x4000, symlink
    _save(n_dir / "alpha.png", Image.fromarray(arr).convert("RGBA"))
    _save(n_dir / "deep.png", Image.fromarray(arr.astype(np.uint16) * 257))
    _save(n_dir / "cmyk.jpeg", Image.fromarray(arr).convert("CMYK"))
    _save(n_dir / "tiny.png", Image.fromarray(np.full((1, 1), 90, np.uint8)))
    _save(n_dir / "huge.jpeg", Image.fromarray(arr).resize((4000, 4000)), quality=50)
    (n_dir / "link.jpeg").symlink_to(good)
    # skipped: a PNG whose header declares 100,000 x 100,000 pixels (a decompression bomb)
    (n_dir / "bomb.png").write_bytes(_png_declaring(100_000, 100_000))
    # skipped without decoding: 12,000 x 12,000 declared, above Pillow's warning limit
    (n_dir / "large.png").write_bytes(_png_declaring(12_000, 12_000))
    ctx, p = prepared(root, tmp_path)
    names = {str(n).rsplit("/", 1)[-1] for n in p.names}
    assert {"alpha.png", "deep.png", "cmyk.jpeg", "tiny.png", "huge.jpeg", "link.jpeg"} <= names
    assert {"empty.jpeg", "truncated.jpeg", "text.jpeg", "bomb.png", "large.png"}.isdisjoint(names)
    assert len(ctx.listing.ignored) == 3
    skipped = (tmp_path / "build" / "skipped.txt").read_text().splitlines()
    assert len(skipped) == 5 and any("truncated.jpeg" in s for s in skipped)
    assert any("bomb.png" in s and "exceeds limit" in s for s in skipped)
    assert p.images.shape[1:] == (48, 48) and p.images.dtype == np.uint8


def test_unreadable_file_is_ignored_and_counted(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions cannot make a file unreadable")
    root = make_dataset(tmp_path / "d", per_class={"train": 4, "test": 2})
    f = next((root / "train" / "NORMAL").iterdir())
    f.chmod(0)
    ctx, _ = prepared(root, tmp_path)
    assert any("unreadable" in s for s in ctx.listing.ignored)


def test_tiny_val_folder_is_used(tmp_path):
    root = make_dataset(tmp_path / "d", per_class={"train": 6, "test": 3, "val": 1})
    # make_dataset reuses train/'s names in val/ (same patient ids, which would be regrouped into
    # train/: tests/test_data.py covers that); give val/ its own patients here
    for f in sorted((root / "val").rglob("*.jpeg")):
        f.rename(f.with_name(f.name.replace("IM-0000", "IM-0900").replace("person0_", "person900_")))
    ctx, p = prepared(root, tmp_path)
    assert np.sum(p.source_split == "val") == 2
    assert np.all(p.split[p.source_split == "val"] == "val")
