"""Does TensorFlow's thread count change a trained model? The study's CNN trained on the same
seeded random images with each thread count, twice, each run in a fresh process (the count can
only be set before TensorFlow starts); prints the largest weight and probability differences
between runs (no dataset, no metric of any model).

    .venv/bin/python bench/threads.py [--threads 1 2] [--size 128] [--images 512] [--epochs 10]

Measured here (2 cores, 2026-12-04, other jobs on the cores): 10 epochs, 128 px, 512 images: two runs with
the same count were bitwise identical; 1 vs 2 threads differed by up to 0.019 in a weight and 0.0011 in a
probability (2 of 512 decisions); TensorFlow's default count (0) equalled 2 threads (the cores) bitwise.
Hence ``[run] threads``: the count is fixed for every training task, wherever it runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

TRAIN = """
import sys, warnings
warnings.filterwarnings("ignore", message=r".*`shuffle=True` was passed.*")
threads, out, size, images, epochs = (int(a) if a.isdigit() else a for a in sys.argv[1:])
import tensorflow as tf
if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
import numpy as np
sys.path.insert(0, {root!r})
from xaikit.model import build_cnn
from xaikit.pipeline import AugmentParams
from xaikit.train import TrainSettings, predict_probs, train_classifier
rng = np.random.default_rng(0)
x = rng.integers(0, 255, (images, size, size), dtype=np.uint8)
y = rng.integers(0, 2, images)
model = build_cnn(size, 1, seed=1, dropout=0.5)
augment = AugmentParams(rotation_deg=20.0, zoom=0.2, shift=0.1, gamma=0.3, blur_mix=1.0, blur_sigma=2.5)
train_classifier(model, x, y, x[:64], y[:64], TrainSettings(epochs=epochs, seed=1, augment=augment), verbose=False)
np.savez(out, *model.get_weights(), probs=predict_probs(model, x))
"""


def train(threads: int, out: Path, args) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", TRAIN.format(root=str(ROOT)), str(threads), str(out), str(args.size),
                    str(args.images), str(args.epochs)], check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return time.perf_counter() - t0


def compare(a: Path, b: Path) -> str:
    u, v = np.load(a), np.load(b)
    keys = [k for k in u.files if k != "probs"]
    if all(np.array_equal(u[k], v[k]) for k in keys):
        return "bitwise identical"
    dw = max(float(np.max(np.abs(u[k] - v[k]))) for k in keys)
    dp = np.abs(u["probs"] - v["probs"])
    flips = int(np.sum((u["probs"] >= 0.5) != (v["probs"] >= 0.5)))
    return (f"max |weight difference| {dw:.3g}, max |probability difference| {dp.max():.3g} "
            f"(mean {dp.mean():.3g}), {flips} of {len(dp)} decisions differ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="counts to compare (0: TensorFlow's)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="xaikit-bench-threads-") as tmp:
        runs = {}
        for n in args.threads:
            for rep in (1, 2):
                runs[n, rep] = Path(tmp) / f"t{n}-{rep}.npz"
                print(f"{n} thread(s), run {rep}: {train(n, runs[n, rep], args):.1f} s", flush=True)
        for n in args.threads:
            print(f"{n} vs {n} thread(s): {compare(runs[n, 1], runs[n, 2])}")
        first = args.threads[0]
        for n in args.threads[1:]:
            print(f"{first} vs {n} thread(s): {compare(runs[first, 1], runs[n, 1])}")


if __name__ == "__main__":
    main()
