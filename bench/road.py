"""Benchmark: ROAD's noisy linear imputation (xaikit.road) per image and step, against one
forward pass of the model over the same batch, measured in the same run.

Uses a build's test images and their IG and Grad-CAM maps when present (no labels are read),
else uniform noise images with random maps. For each map and ranking resolution it times the
deletion and insertion masks of one image at every interior fraction (the two ends need no
solve), with the report's direct solve (SuperLU, symmetric mode) and with conjugate gradients.

    .venv/bin/python bench/road.py [--build build] [--images 4] [--steps 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402

from xaikit.faithfulness import unit_ranks  # noqa: E402
from xaikit.model import build_cnn  # noqa: E402
from xaikit.road import noisy_linear_impute  # noqa: E402
from xaikit.similarity import to_2d  # noqa: E402


def masks(m: np.ndarray, cells: int, steps: int) -> np.ndarray:
    """Deletion then insertion masks of removed pixels at the interior fractions."""
    rank, units = unit_ranks(m, cells)
    fr = np.linspace(0, 1, steps + 1)[1:-1]
    gone = np.stack([rank < int(round(f * units)) for f in fr])
    return np.concatenate([gone, ~gone])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(Path(__file__).resolve().parent.parent / "build"))
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6, help="fraction steps (the report's ROAD grid)")
    ap.add_argument("--cells", type=int, default=8)
    args = ap.parse_args()
    build = Path(args.build)
    ig_path, cam_path = build / "attributions" / "ig_main.npz", build / "attributions" / "gradcam_main.npz"
    rng = np.random.default_rng(0)
    if ig_path.exists() and cam_path.exists():
        with np.load(ig_path) as z, np.load(cam_path) as c:
            x = z["inputs"][: args.images].astype(np.float32)
            maps = {"IG": to_2d(z["attributions"][: args.images]), "Grad-CAM": c["maps"][: args.images]}
        where = f"test images and maps of {build}"
    else:
        x = rng.uniform(size=(args.images, 128, 128, 1)).astype(np.float32)
        maps = {"IG": rng.normal(size=x.shape[:3])}
        where = "uniform noise images (no build found)"
    maps["random"] = rng.uniform(size=x.shape[:3])
    size = x.shape[1]
    model_path = build / "models" / "main.keras"
    model = (keras.saving.load_model(model_path, safe_mode=True, compile=False) if model_path.exists()
             else build_cnn(size, x.shape[3], seed=0))
    n_masks = 2 * (args.steps - 1)
    batch = np.repeat(x[:1], 2 * (args.steps + 1), axis=0)
    model.predict(batch, batch_size=len(batch), verbose=0)                       # warm up
    t = time.perf_counter()
    for i in range(len(x)):
        model.predict(np.repeat(x[i:i + 1], 2 * (args.steps + 1), axis=0), batch_size=len(batch), verbose=0)
    forward = (time.perf_counter() - t) / (len(x) * 2 * (args.steps + 1))
    print(f"{where}; {len(x)} images at {size} px, {args.steps} steps ({n_masks} solves per image and map)")
    print(f"reference: one forward pass {forward * 1e3:.2f} ms per image and step (batch of {len(batch)})")
    print(f"{'map':<9} {'ranked at':<10} {'ms/solve':>8} {'x forward':>9} {'cg ms':>7} {'cg/direct':>9} "
          f"{'max |cg - direct|':>17}")
    total = {}
    for cells in (args.cells, 0):
        for name, m in maps.items():
            t_cg = t_direct = 0.0
            err = 0.0
            for i in range(len(x)):
                removed = masks(m[i], cells, args.steps)
                imgs = np.repeat(x[i:i + 1], len(removed), axis=0)
                t = time.perf_counter()
                a = noisy_linear_impute(imgs, removed, seed=0, noise=0.0, rtol=1e-5)
                t_cg += time.perf_counter() - t
                t = time.perf_counter()
                b = noisy_linear_impute(imgs, removed, seed=0, noise=0.0)
                t_direct += time.perf_counter() - t
                err = max(err, float(np.abs(a - b).max()))
            per = t_direct / (len(x) * n_masks)
            total[cells, name] = per
            res = f"{cells}x{cells}" if cells else "pixels"
            print(f"{name:<9} {res:<10} {per * 1e3:8.1f} {per / forward:9.1f} "
                  f"{t_cg / (len(x) * n_masks) * 1e3:7.1f} {t_cg / t_direct:9.2f} {err:17.1e}")
    for cells in (args.cells, 0):
        res = f"{cells}x{cells}" if cells else "pixels"
        per_image = sum(v for (c, _), v in total.items() if c == cells) * n_masks
        print(f"ranked at {res}: {per_image:.2f} s per image for the three maps' deletion and insertion")


if __name__ == "__main__":
    main()
