"""How small a random-label subset still memorises its permuted labels, and how fast.

For each subset size and training seed, trains the study's architecture on a seeded stratified
subset of the training split with permuted labels (the random-label recipe of report/models.py)
until the clean train accuracy on the permuted labels reaches the target, and prints epochs,
seconds and that train accuracy. Nothing is scored on validation or test images.

    XAIKIT_DATA=... .venv/bin/python bench/memorise.py --sizes 500 1000 --seeds 7 8 9
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from report.build import make_context  # noqa: E402
from xaikit.data import stratified_subset  # noqa: E402
from xaikit.model import build_cnn  # noqa: E402
from xaikit.train import TrainSettings, train_classifier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--max-epochs", type=int, default=80)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    ctx = make_context(None, None, (), None, ROOT / "build")
    p, cfg = ctx.prepared(), ctx.cfg
    train = p.idx("train")
    print(f"batch {args.batch}, learning rate {args.lr}, {cfg['data.image_size']} px", flush=True)
    print("size seed epochs seconds train_acc_permuted stopped", flush=True)
    for size in args.sizes:
        sub = train[stratified_subset(p.labels[train], size, 0)]
        for seed in args.seeds:
            permuted = np.random.default_rng(seed).permutation(p.labels[sub])
            settings = TrainSettings(epochs=args.max_epochs, batch_size=args.batch,
                                     learning_rate=args.lr, label_smoothing=0.0, class_weights="none",
                                     schedule="constant", select="last",
                                     stop_at_train_accuracy=args.target, seed=seed)
            model = build_cnn(cfg["data.image_size"], 1, dropout=0.0, seed=seed)
            r = train_classifier(model, p.images[sub], permuted, None, None, settings, verbose=False)
            print(f"{size} {seed} {r.epochs_run} {r.seconds:.0f} {r.train_accuracy:.3f} {r.stopped}",
                  flush=True)


if __name__ == "__main__":
    main()
