"""Compare training recipes for the main model by validation-only criteria.

Each variant is a set of config overrides. For each, the main model is trained (or taken from
build/ when its cached key matches) and scored on the validation split:
  - validation AUC and loss,
  - blur sensitivity: mean change of P(PNEUMONIA) when validation NORMAL images are blurred
    (the sharpness shortcut measured in Q1.2; smaller is better).
Selection rule, fixed before running: among variants whose validation AUC is within 0.01 of the
best, take the one with the smallest blur sensitivity. No test metric is read or printed.

    XAIKIT_DATA=... .venv/bin/python bench/recipes.py "augment.blur_sigma=2.5 augment.blur_mix=1.0"
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report.build import make_context  # noqa: E402
from xaikit.robustness import blur_sensitivity  # noqa: E402
from xaikit.train import predict_probs  # noqa: E402
from xaikit.metrics import binary_metrics  # noqa: E402


def score(overrides: list[str], build: Path) -> dict:
    ctx = make_context(None, None, overrides, None, build)
    model, card = ctx.model("main")
    p = ctx.prepared()
    yv = p.y("val")
    pv = predict_probs(model, p.x("val"))
    sens = blur_sensitivity(model, p.x("val")[yv == 0],
                            ctx.cfg["attribution.shortcut_blur_sigma"] * ctx.cfg["data.image_size"] / 128,
                            threshold=float(card["val_threshold"]))
    return {"overrides": overrides, "val_auc": binary_metrics(yv, pv).auc, "val_loss_best": min(card["history"]["val_loss"]),
            "blur_shift_val_normal": sens.mean_shift, "blur_flips": sens.flipped_to_pneumonia,
            "best_epoch": card["best_epoch"], "seconds": card["seconds"]}


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    variants = [[]] + [v.split() for v in sys.argv[1:]]
    rows = []
    for i, v in enumerate(variants):
        build = root / "build" if not v else root / "build" / "recipes" / f"v{i}"
        rows.append(score(v, build))
        print(json.dumps(rows[-1]), flush=True)
    best_auc = max(r["val_auc"] for r in rows)
    eligible = [r for r in rows if r["val_auc"] >= best_auc - 0.01]
    chosen = min(eligible, key=lambda r: abs(r["blur_shift_val_normal"]))
    print("chosen by the validation rule:", chosen["overrides"] or "default config")


if __name__ == "__main__":
    main()
