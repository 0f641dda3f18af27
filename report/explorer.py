"""The explorer: ``build/explorer/index.html``, one card per explained test image, its maps and numbers.

A static folder that opens from ``file://`` with no server, CDN or build step: ``index.html``,
``explorer.css`` and ``explorer.js`` copied from ``templates/explorer/``, ``data.js`` (one global,
``XAIKIT_EXPLORER``: fetch() of JSON is refused from ``file://``) and one thumbnail per map under
``img/``. It only reads what the sections saved (``attributions/*.npz`` and their numbers) and
computes no measure of its own; the arrays are read by their keys, so a map or a per-image number
that a section adds (another Q5 model, cascade steps, per-image areas) appears without a change here:

- a file's images are its ``names`` array, or Q3's (``ig_main``) when it has none and as many rows;
- an array of one map per image (N x H x W, or N x H x W x 1) is a row of thumbnails, an array
  N x S x H x W (or S x N x H x W) a sequence of S rows (steps, e.g. a cascade);
- a 1-D numeric array of one value per image is a per-image number (filter, sort, card table).
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xaikit.data import CLASSES

from . import artifacts
from .context import ROOT, log

TEMPLATES = ROOT / "templates" / "explorer"
ASSETS = ("index.html", "explorer.css", "explorer.js")
FOLDER = "explorer"
LINK = f"{FOLDER}/index.html"            # from report.html
SECTIONS = ("q3", "q4", "q5")            # the report sections that link to it

MAIN = "ig_main"                         # Q3's file: names, labels, targets, probs of every explained image
CORE = ("names", "labels", "targets", "probs", "threshold", "inputs")
SKIP = ("masks", "input_alone")          # the atlas (the same for every image) and a null reference
BOOKKEEPING = ("positions", "target_")    # index and class columns (Q3.5's seed file): no number to show
# Per-image numbers not saved by any section today; the page says so (and shows them once saved
# under one of these keys in any arrays file).
WANTED = {"lung_share": "lung share", "border_share": "border share", "deletion_auc": "deletion area",
          "insertion_auc": "insertion area", "q5_similarity": "Q5 similarities"}
NUMBER_LABELS = {("ig_main", "gaps"): ("completeness gap (IG)", "pct"),
                 ("ig_main", "f_image"): ("margin F(x)", "fixed"),
                 ("ig_main", "f_baseline"): ("margin F(baseline)", "fixed"),
                 ("ig_main", "lung_share"): ("lung share of |IG|", "pct"),
                 ("ig_main", "border_share"): ("border share of |IG|", "pct"),
                 ("gradcam_main", "lung_share"): ("lung share of Grad-CAM", "pct"),
                 ("gradcam_main", "border_share"): ("border share of Grad-CAM", "pct")}
MODEL_ORDER = ("main", "random", "control")
THUMB = dict(format="WEBP", quality=80, method=4)   # method 6 saves 3% of bytes at 4x the time


@dataclass
class MapRow:
    """One kind of thumbnail: its key (file name stem), label, group and how it is coloured."""

    key: str
    label: str
    group: str
    kind: str            # gray, heat (|map|, inferno) or signed (RdBu_r)
    clip: float          # percentile of |map| shown at full colour
    maps: dict = field(default_factory=dict, repr=False)    # image name -> 2-D array


@dataclass
class Column:
    key: str
    label: str
    format: str          # fixed, pct
    values: dict = field(default_factory=dict, repr=False)  # image name -> float


# ---------------------------------------------------------------- reading what the build saved

def read_arrays(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every ``attributions/*.npz`` as name -> {key: array} (an unreadable file is skipped, logged)."""
    out = {}
    for path in sorted(Path(folder).glob("*.npz")):
        try:
            with np.load(path, allow_pickle=False) as z:
                out[path.stem] = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            log(f"explorer: skipped {path.name} ({exc})")
    return out


def image_names(arrays: dict, main_names: np.ndarray | None) -> np.ndarray | None:
    """The images a file's rows stand for: its ``names``, else Q3's when it has as many rows."""
    if "names" in arrays:
        return np.asarray(arrays["names"]).astype(str)
    n = _rows(arrays)
    if main_names is not None and n == len(main_names):
        return main_names
    return None


def _rows(arrays: dict) -> int | None:
    lengths = {a.shape[0] for k, a in arrays.items() if a.ndim >= 1 and k not in SKIP}
    return lengths.pop() if len(lengths) == 1 else None


def _model_sort(name: str) -> tuple:
    kind, _, rest = name.partition("-")
    k = MODEL_ORDER.index(kind) if kind in MODEL_ORDER else len(MODEL_ORDER)
    return (k, kind, 1 if rest.startswith("all") else 0, int(rest) if rest.isdigit() else 0, rest)


def _map_rows(stem: str, key: str, a: np.ndarray, n: int, arrays: dict) -> list[tuple[str, str, str, str, float, np.ndarray]]:
    """(key, label, group, kind, clip, maps N x H x W) for the thumbnails one array holds."""
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[0] == n:
        seqs = None
    elif a.ndim == 4 and (a.shape[0] == n or a.shape[1] == n):
        seqs = a if a.shape[0] == n else np.swapaxes(a, 0, 1)
    else:
        return []
    if min(a.shape[-2:]) < 4:
        return []
    clip = 100.0 if "gradcam" in stem or "gradcam" in key or "cam" in key else 99.0
    if seqs is not None:
        steps = arrays.get(f"{key}_steps", arrays.get("steps"))
        labels = ([str(s) for s in np.asarray(steps).tolist()] if steps is not None and len(steps) == seqs.shape[1]
                  else [str(s) for s in range(seqs.shape[1])])
        return [(f"{stem}-{key}-{s}", f"{key}: {lab}", f"{stem}: {key}", "heat", clip, seqs[:, s])
                for s, lab in enumerate(labels)]
    if stem == "ig_main" and key == "attributions":
        b = str(arrays.get("baseline", "main"))
        return [("ig", f"|IG| ({b})", "Integrated Gradients, main baseline", "heat", 99.0, a),
                ("ig-signed", f"signed IG ({b}; red +, blue -)", "Integrated Gradients, main baseline",
                 "signed", 99.0, a)]
    if stem == "ig_baselines" and key.startswith("attr_"):
        b = key[len("attr_"):]
        return [(f"ig-{b}", b, "|IG| for each baseline (fixed steps)", "heat", 99.0, a)]
    if stem == "gradcam_main":
        layer = str(arrays.get("layer", "")) if key == "maps" else key.removeprefix("maps_")
        return [(f"gradcam-{layer or key}", f"Grad-CAM {layer or key}", "Grad-CAM", "heat", 100.0, a)]
    if stem == "q5_maps":
        for meth, title in (("ig", "|IG|"), ("gradcam", "Grad-CAM")):
            if key.startswith(meth + "_"):
                model = key[len(meth) + 1:].replace("_", "-")
                return [(f"q5-{meth}-{model}", model, f"Q5: {title} under each model", "heat",
                         100.0 if meth == "gradcam" else 99.0, a)]
    return [(f"{stem}-{key}", key, stem, "heat", clip, a)]


def collect(arrays_by_file: dict, numbers: dict) -> tuple[list[dict], list[MapRow], list[Column]]:
    """Cards (one per image: name, label, target, p, report), thumbnail rows and number columns."""
    main = arrays_by_file.get(MAIN, {})
    main_names = np.asarray(main["names"]).astype(str) if "names" in main else None
    cards: dict[str, dict] = {}
    rows: dict[str, MapRow] = {}
    cols: dict[str, Column] = {}
    order = [MAIN] + sorted(k for k in arrays_by_file if k != MAIN)
    for stem in order:
        arrays = arrays_by_file.get(stem)
        if not arrays:
            continue
        names = image_names(arrays, main_names)
        if names is None:
            log(f"explorer: {stem}.npz has no names and not one row per Q3 image; skipped")
            continue
        n = len(names)
        for i, name in enumerate(names):
            c = cards.setdefault(name, {"name": name})
            for key, field_ in (("labels", "label"), ("targets", "target"), ("probs", "p")):
                if key in arrays and field_ not in c and arrays[key].shape == (n,):
                    c[field_] = arrays[key][i].item()
            if "inputs" in arrays and "image" not in c:
                c["image"] = _two_d(arrays["inputs"][i])
        for key, a in arrays.items():
            if key in CORE or key in SKIP or not np.issubdtype(a.dtype, np.number):
                continue
            if a.shape == (n,):
                if key.startswith(BOOKKEEPING):
                    continue
                default = (f"Q5 {key.replace('_', ' ')}" if stem == "q5_similarity"
                           else WANTED.get(key, f"{key} ({stem})"))
                label, fmt = NUMBER_LABELS.get((stem, key), (default, "fixed"))
                col = cols.setdefault(f"{stem}.{key}", Column(f"{stem}.{key}", label, fmt))
                col.values.update({nm: float(v) for nm, v in zip(names, a)})
                continue
            for rkey, label, group, kind, clip, maps in _map_rows(stem, key, a, n, arrays):
                row = rows.setdefault(rkey, MapRow(rkey, label, group, kind, clip))
                row.maps.update({nm: maps[i] for i, nm in enumerate(names)})
    threshold = float(main["threshold"]) if "threshold" in main else 0.5
    report = {r["name"] for r in numbers.get("q3", {}).get("report_images", [])}
    out = []
    for name, c in cards.items():
        if "label" not in c:
            continue
        target = c.get("target", int(c.get("p", 0.0) >= threshold))
        label = int(c["label"])
        out.append({"name": name, "label": CLASSES[label], "target": CLASSES[int(target)],
                    "p": c.get("p"), "outcome": _outcome(label, int(target)),
                    "report": name in report, "image": c.get("image")})
    return out, _ordered(rows), list(cols.values())


def _outcome(label: int, target: int) -> str:
    """correct, FP (NORMAL explained as PNEUMONIA) or FN: the target is the decided class."""
    return "correct" if label == target else ("FP" if target == 1 else "FN")


def _two_d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32)
    return a[..., 0] if a.ndim == 3 else a


GROUP_ORDER = ("Integrated Gradients", "|IG| for each baseline", "Grad-CAM", "Q5: |IG|", "Q5: Grad-CAM")


def _group_rank(group: str) -> int:
    return next((i for i, g in enumerate(GROUP_ORDER) if group.startswith(g)), len(GROUP_ORDER))


def _ordered(rows: dict[str, MapRow]) -> list[MapRow]:
    groups = sorted(dict.fromkeys(r.group for r in rows.values()), key=_group_rank)   # stable: others keep file order
    out = []
    for g in groups:
        members = [r for r in rows.values() if r.group == g]
        if g.startswith("Q5"):
            members.sort(key=lambda r: _model_sort(r.label))
        out.extend(members)
    return out


# ---------------------------------------------------------------- thumbnails

def _lut(name: str) -> np.ndarray:
    import matplotlib
    return (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colour(m: np.ndarray, kind: str, clip: float, luts: dict) -> np.ndarray:
    """A map as uint8 pixels, scaled as the report's figures are (xaikit.plots): gray in [0, 1];
    heat |map| and signed map up to the ``clip`` percentile of |map|."""
    m = np.nan_to_num(_two_d(m))
    if kind == "gray":
        return (np.clip(m / (255.0 if m.max() > 1 else 1.0), 0, 1) * 255).round().astype(np.uint8)
    top = float(np.percentile(np.abs(m), clip)) or 1.0
    if kind == "signed":
        level = (np.clip(m / top, -1, 1) + 1) / 2
        return luts["RdBu_r"][(level * 255).round().astype(np.uint8)]
    return luts["inferno"][(np.clip(np.abs(m) / top, 0, 1) * 255).round().astype(np.uint8)]


def encode(pixels: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, **THUMB)
    return buf.getvalue()


# ---------------------------------------------------------------- the page

def slug(name: str, taken: set) -> str:
    """An element id from the file name (IM-0001-0001.jpeg -> IM-0001-0001), unique in ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem) or "image"
    out, k = base, 2
    while out in taken:
        out, k = f"{base}-{k}", k + 1
    taken.add(out)
    return out


def page_data(cards: list[dict], rows: list[MapRow], cols: list[Column], numbers: dict,
              ext: str = "webp") -> tuple[dict, list[tuple[str, np.ndarray, str, float]]]:
    """The content of data.js, and the thumbnails to write as (path, map, kind, clip)."""
    taken: set = set()
    images, thumbs = [], []
    for c in cards:
        cid = slug(c["name"], taken)
        maps = {}
        if c["image"] is not None:
            maps["image"] = f"img/{cid}/image.{ext}"
            thumbs.append((maps["image"], c["image"], "gray", 100.0))
        for r in rows:
            if c["name"] in r.maps:
                maps[r.key] = f"img/{cid}/{r.key}.{ext}"
                thumbs.append((maps[r.key], r.maps[c["name"]], r.kind, r.clip))
        images.append({"id": cid, "name": c["name"], "label": c["label"], "target": c["target"],
                       "p": _finite(c["p"]), "outcome": c["outcome"], "report": c["report"],
                       "q5": any(c["name"] in r.maps for r in rows if r.group.startswith("Q5")),
                       "numbers": {col.key: _finite(col.values[c["name"]]) for col in cols if c["name"] in col.values},
                       "maps": maps})
    q3 = numbers.get("q3", {})
    have = {col.key.split(".", 1)[1] for col in cols} | {col.key.split(".", 1)[0] for col in cols}
    data = {
        "profile": None,
        "threshold": q3.get("threshold"),
        "baseline": q3.get("baseline"),
        "rows": [{"key": r.key, "label": r.label, "group": r.group} for r in rows],
        "columns": [{"key": "p", "label": "P(PNEUMONIA)", "format": "fixed"}] +
                   [{"key": col.key, "label": col.label, "format": col.format} for col in cols],
        "not_saved": [label for key, label in WANTED.items() if key not in have],
        "images": images,
    }
    return data, thumbs


def _finite(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def write(build: Path, numbers: dict, profile: str | None = None, templates: Path = TEMPLATES) -> Path | None:
    """Write ``build/explorer/`` from the saved arrays (reused when nothing it reads changed);
    return its index.html, or None when no section saved maps."""
    build = Path(build)
    folder = build / "attributions"
    files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    if not (folder / f"{MAIN}.npz").exists():
        return None
    final = build / FOLDER
    templates = Path(templates)
    key = artifacts.digest(artifacts.source_digest([Path(__file__)] + [templates / a for a in ASSETS]),
                           [(p.name, _file_hash(p)) for p in files],
                           {k: numbers.get(k) for k in SECTIONS}, profile)
    if (final / ".key").is_file() and (final / ".key").read_text() == key and (final / "index.html").exists():
        return final / "index.html"
    cards, rows, cols = collect(read_arrays(folder), numbers)
    data, thumbs = page_data(cards, rows, cols, numbers)
    data["profile"] = profile
    tmp = Path(tempfile.mkdtemp(dir=build, prefix=f".{FOLDER}."))
    try:
        luts = {n: _lut(n) for n in ("inferno", "RdBu_r")}
        for rel, m, kind, clip in thumbs:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(encode(colour(m, kind, clip, luts)))
        for a in ASSETS:
            shutil.copyfile(templates / a, tmp / a)
        (tmp / "data.js").write_text("window.XAIKIT_EXPLORER = " + _json(data) + ";\n", "utf-8")
        (tmp / ".key").write_text(key)
        artifacts.atomic_replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"explorer: {len(cards)} images, {len(thumbs)} thumbnails, {folder_size(final) / 1e6:.1f} MB in {final}")
    return final / "index.html"


def _json(data: dict) -> str:
    import json
    # "</" cannot close a script element; the file is a script, but keep it safe to inline
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _file_hash(path: Path) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _key_of(build: Path) -> str | None:
    path = Path(build) / FOLDER / ".key"
    return path.read_text() if path.is_file() else None


def links(build: Path) -> dict[str, str]:
    """The report's links to the explorer (title page and each of SECTIONS; Q5's shows its images),
    none when the build has no explorer."""
    if not (Path(build) / LINK).is_file():
        return {}
    return {"title": LINK, "q3": LINK, "q4": LINK, "q5": LINK + "?set=q5"}


def build_step(ctx, results: dict) -> Path | None:
    """The build's step: write the explorer from the sections' results and the saved arrays, with
    its time in the build's stage list."""
    t0 = time.perf_counter()
    before = _key_of(ctx.build)
    path = write(ctx.build, {name: res["numbers"] for name, res in results.items()}, ctx.cfg.profile)
    if path is not None:
        how = "reused" if before is not None and before == _key_of(ctx.build) else "computed"
        ctx.timings.append(("explorer", how, time.perf_counter() - t0))
    return path
