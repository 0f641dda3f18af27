"""Throughput of the model zoo: a batch of small random-label models trained one after the other
vs side by side on Ray, measured in the same run (wall seconds; no metric of any model is read).

    .venv/bin/python bench/parallel.py [--models 4] [--size 128] [--images 500] [--epochs 8]

Three ways, each into its own temporary build folder, in this order:
  serial-local   in this process, one after the other, TensorFlow's own thread count (engine "local")
  serial-ray     Ray tasks, one at a time, each with every core's thread (run.threads = cores)
  parallel-ray   Ray tasks, cores at a time, one thread each (run.threads = 1, the default)
and prints the parallel/serial throughput ratios (models per second), with the Ray start-up cost
shown apart. The data is the study's (--data, $XAIKIT_DATA), capped per class like the quick profile.
Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--models", type=int, default=4, help="random-label models in the batch")
    ap.add_argument("--size", type=int, default=128, help="image size (px)")
    ap.add_argument("--images", type=int, default=500, help="training images per model")
    ap.add_argument("--epochs", type=int, default=8, help="epochs per model (fixed: no early stop)")
    args = ap.parse_args()
    from report.cli import quiet
    quiet(False)
    cores = os.cpu_count() or 1
    base = [f"data.image_size={args.size}", "data.max_per_class=600", f"random_labels.seeds={args.models}",
            "random_labels.whole_split=false", f"random_labels.subset_size={args.images}",
            f"random_labels.max_epochs={args.epochs}", "random_labels.target_accuracy=1.0"]
    ways = {"serial-local": ["run.engine=local"],
            "serial-ray": ["run.engine=ray", f"run.threads={cores}"],
            "parallel-ray": ["run.engine=ray", "run.threads=1"]}
    walls = {}
    with tempfile.TemporaryDirectory(prefix="xaikit-bench-parallel-") as tmp:
        for label, extra in ways.items():
            walls[label] = _timed(args.data, base + extra, Path(tmp) / label)
            wall, start = walls[label]
            print(f"{label:>13}: {wall:6.1f} s for {args.models} models"
                  + (f" (Ray's start-up {start:.1f} s included)" if start else ""), flush=True)
    local, ray_serial, ray_parallel = (walls[k][0] for k in ways)
    print(f"throughput parallel-ray / serial-local: {local / ray_parallel:.2f}x")
    print(f"throughput parallel-ray / serial-ray:   {ray_serial / ray_parallel:.2f}x")
    start = walls["parallel-ray"][1]
    if start:
        print(f"without Ray's start-up: parallel-ray / serial-local {local / (ray_parallel - start):.2f}x")


def _timed(data: str | None, settings: list[str], build: Path) -> tuple[float, float]:
    """(wall seconds to train the batch, Ray's start-up seconds within them, 0 without Ray); the
    images are decoded before the clock starts."""
    from report import engine, models
    from report.build import _load_model, make_context, plan
    ctx = make_context(data, None, settings, None, build)
    ctx.prepared()
    wanted = models.expand(ctx, "random")
    t0 = time.perf_counter()
    with engine.running(ctx, _load_model) as eng:
        eng.submit(ctx, wanted, plan(ctx, wanted, ()))
        for name in wanted:
            ctx.model(name)
    wall = time.perf_counter() - t0
    return wall, sum(sec for stage, _, sec in ctx.timings if stage == "ray start")


if __name__ == "__main__":
    main()
