"""The explorer (report/explorer.py): written from small synthetic arrays laid out as a build saves
them, read generically, and opened from file:// in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from report import explorer
from report.artifacts import atomic_save_npz

from . import browser

N, SIZE, THRESHOLD = 12, 32, 0.45
Q5 = 6                   # images of the Q5 maps (the first of each class)
Q5_MODELS = ("main", "random-1", "random-2", "random-all", "control-1", "control-2", "control-all")
STEPS = ("none", "logits", "dense", "last_conv")


def synthetic_build(build: Path, *, cascade: bool = True) -> dict:
    """attributions/*.npz as Q3-Q5 save them, for N test images with right and wrong decisions;
    return the numbers the sections would have."""
    rng = np.random.default_rng(0)
    labels = np.array([0] * 6 + [1] * 6)
    probs = np.array([0.1, 0.2, 0.3, 0.5, 0.7, 0.44, 0.9, 0.8, 0.46, 0.3, 0.2, 0.95], np.float32)
    targets = (probs >= THRESHOLD).astype(int)        # FP: 0.5, 0.7; FN: 0.3, 0.2
    names = np.array([f"test/NORMAL/IM-{i:04d}-0001.jpeg" for i in range(6)] +
                     [f"test/PNEUMONIA/person{i}_bacteria_{i}.jpeg" for i in range(6)])
    x = rng.uniform(size=(N, SIZE, SIZE, 1)).astype(np.float32)
    att = rng.normal(size=(N, SIZE, SIZE, 1)).astype(np.float32)
    a = build / "attributions"
    atomic_save_npz(a / "ig_main.npz", names=names, inputs=x, labels=labels, targets=targets, probs=probs,
                    attributions=att, gaps=rng.uniform(0, 0.05, N), f_image=rng.normal(size=N).astype(np.float32),
                    f_baseline=rng.normal(size=N).astype(np.float32), baseline=np.array("blurred"),
                    masks=np.ones((N, SIZE, SIZE), bool), input_alone=np.abs(x[..., 0]), threshold=np.array(THRESHOLD))
    atomic_save_npz(a / "ig_baselines.npz", targets=targets, inputs=x,       # no names: Q3's order
                    **{f"attr_{b}": np.abs(rng.normal(size=(N, SIZE, SIZE))) for b in ("black", "blurred", "noise")})
    atomic_save_npz(a / "gradcam_main.npz", names=names, inputs=x, labels=labels, targets=targets,
                    maps=rng.uniform(size=(N, SIZE, SIZE)), layer=np.array("last_conv"),
                    maps_conv_block1=rng.uniform(size=(N, SIZE, SIZE)))     # the early layer, once saved
    pos = np.r_[0:3, 6:9]
    atomic_save_npz(a / "q5_maps.npz", names=names[pos], targets=targets[pos], labels=labels[pos],
                    **{f"{m}_{name}".replace("-", "_"): rng.normal(size=(Q5, SIZE, SIZE))
                       for name in Q5_MODELS[::-1] for m in ("ig", "gradcam")})
    if cascade:   # as Q5.4 might save it: images x steps x H x W, with the steps named
        atomic_save_npz(a / "q5_cascade.npz", names=names[[0, 6]], ig_top_down=rng.normal(size=(2, 4, SIZE, SIZE)),
                        ig_top_down_steps=np.array(STEPS))
    report = [{"name": str(names[i]), "label": "NORMAL" if labels[i] == 0 else "PNEUMONIA"} for i in (0, 1, 6, 7)]
    return {"q3": {"threshold": THRESHOLD, "baseline": "blurred", "report_images": report}, "q4": {}, "q5": {}}


def test_collect_reads_every_model_and_file_by_its_keys(tmp_path):
    # catches: a Q5 model (random-all, a third seed) or the cascade file ignored because the names
    # are hard-coded; a file without names (ig_baselines) dropped; FP and FN swapped
    numbers = synthetic_build(tmp_path)
    cards, rows, cols = explorer.collect(explorer.read_arrays(tmp_path / "attributions"), numbers)
    assert len(cards) == N
    keys = [r.key for r in rows]
    assert keys[:2] == ["ig", "ig-signed"] and {"ig-black", "ig-blurred", "ig-noise", "gradcam-last_conv", "gradcam-conv_block1"} <= set(keys)
    q5 = [r.label for r in rows if r.group.startswith("Q5: |IG|")]
    assert q5 == list(Q5_MODELS)                          # main, random-1..k, random-all, control-1..k, control-all
    cascade = [r for r in rows if r.group.startswith("q5_cascade")]
    assert [r.label for r in cascade] == [f"ig_top_down: {s}" for s in STEPS]
    assert all(len(r.maps) == 2 for r in cascade)
    assert len(next(r for r in rows if r.key == "ig-black").maps) == N
    assert [c.key for c in cols] == ["ig_main.gaps", "ig_main.f_image", "ig_main.f_baseline"]
    outcome = {c["name"].split("/")[-1]: c["outcome"] for c in cards}
    assert outcome["IM-0003-0001.jpeg"] == "FP" and outcome["person3_bacteria_3.jpeg"] == "FN"
    assert sum(c["report"] for c in cards) == 4


def test_collect_without_cascade_or_q5(tmp_path):
    # catches: the explorer failing when a section did not save a file (no cascade, Q5 not run yet)
    numbers = synthetic_build(tmp_path, cascade=False)
    (tmp_path / "attributions" / "q5_maps.npz").unlink()
    cards, rows, _ = explorer.collect(explorer.read_arrays(tmp_path / "attributions"), numbers)
    assert len(cards) == N and not any(r.group.startswith(("Q5", "q5")) for r in rows)


def test_write_makes_a_static_folder_and_reuses_it(tmp_path):
    # catches: a thumbnail that data.js names but that was not written; a CDN or server address;
    # the folder rewritten on a build where nothing it reads changed, or kept after a map changed
    numbers = synthetic_build(tmp_path)
    index = explorer.write(tmp_path, numbers, "quick")
    folder = index.parent
    text = (folder / "data.js").read_text()
    assert text.startswith("window.XAIKIT_EXPLORER = ")
    data = json.loads(text[len("window.XAIKIT_EXPLORER = "):].rstrip().rstrip(";"))
    assert len(data["images"]) == N and data["profile"] == "quick"
    paths = [p for img in data["images"] for p in img["maps"].values()]
    assert len(paths) == len(set(paths)) == sum(1 for _ in (folder / "img").rglob("*.webp"))
    for p in paths:
        with Image.open(folder / p) as im:
            assert im.size == (SIZE, SIZE)
    for asset in explorer.ASSETS:
        body = (folder / asset).read_text()
        assert "http:" not in body and "https:" not in body and "fetch(" not in body
    key = (folder / ".key").read_text()
    stamp = (folder / "data.js").stat().st_mtime_ns
    explorer.write(tmp_path, numbers, "quick")
    assert (folder / "data.js").stat().st_mtime_ns == stamp
    atomic_save_npz(tmp_path / "attributions" / "q5_cascade.npz", names=np.array(["test/NORMAL/IM-0000-0001.jpeg"]),
                    ig_top_down=np.ones((1, 2, SIZE, SIZE)))
    explorer.write(tmp_path, numbers, "quick")
    assert (folder / ".key").read_text() != key


def test_thumbnail_colours_follow_the_report_scaling():
    # catches: signed maps drawn on |map| (sign lost), or heat maps scaled to the max instead of
    # the report's 99th percentile
    luts = {n: explorer._lut(n) for n in ("inferno", "RdBu_r")}
    m = np.linspace(-1, 1, 101).reshape(1, 101)
    signed = explorer.colour(m, "signed", 100, luts)
    assert signed[0, 0, 2] > signed[0, 0, 0] and signed[0, -1, 0] > signed[0, -1, 2]   # blue -, red +
    heat = explorer.colour(np.r_[np.zeros(98), 1.0, 1.0, 50.0].reshape(1, -1), "heat", 99, luts)
    assert (heat[0, 98] == luts["inferno"][255]).all() and (heat[0, 0] == luts["inferno"][0]).all()


def test_report_links_only_to_an_existing_explorer(tmp_path):
    # catches: a report link to an explorer the build did not write (a broken link in the PDF)
    assert explorer.links(tmp_path) == {}
    explorer.write(tmp_path, synthetic_build(tmp_path))
    links = explorer.links(tmp_path)
    assert set(links) == {"title", *explorer.SECTIONS} and all((tmp_path / l.split("?")[0]).exists() for l in links.values())


# ---------------------------------------------------------------- in a real browser

@pytest.fixture(scope="module")
def chromium():
    reason = browser.unavailable()
    if reason:
        pytest.skip(f"browser tests: {reason}")
    with browser.chromium() as driver:
        yield driver


def test_explorer_in_chromium(chromium, tmp_path):
    # catches: a console error or a thumbnail that does not load from file://; a filter whose
    # count differs from the saved arrays (or cards flagged hidden but still drawn); a card showing another image's numbers; a #name link
    # that does not reach its card (ids, or layout shifting as lazy images load)
    numbers = synthetic_build(tmp_path)
    explorer.write(tmp_path, numbers, "quick")
    browser.check_explorer(chromium, tmp_path, report_names=4)
