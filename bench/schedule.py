"""A shorter schedule for the main recipe, chosen on validation only (issue #31, item 3).

The main recipe trains ``train.epochs`` (30) epochs on a warm-up + cosine schedule and keeps the epoch
of lowest validation loss. For each candidate epoch count the same recipe (its cosine compressed into
fewer epochs) is trained for the same ``train.replicates`` seeds, side by side on Ray as the build does,
into ``build/schedule/e<E>/``; the reference is today's seeds, read from the build folder's models when
their keys match (trained there otherwise).

Rule, fixed before any candidate ran: a candidate is adopted when, over its seeds, the mean validation
AUC is at least the lowest of the reference seeds' and the mean validation loss (at the kept epoch) at
most the highest of theirs, i.e. it stays within today's seed spread; among those, the fewest epochs.
Only validation numbers are read and printed; the wall seconds print as ratios to the reference's.

    .venv/bin/python bench/schedule.py --epochs 12 15 [--build build] [--data PATH] [--profile quick]

With ``--candidates-only`` the reference is neither trained nor read: one driver per candidate can then
share a Ray cluster (``XAIKIT_RAY_ADDRESS``) with a build that trains the reference; run again without it
for the table and the decision (everything is read back by key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def seeds_of(data: str | None, overrides: list[str], build: Path, profile: str | None = None) -> tuple[list[dict], str]:
    """Validation AUC, validation loss at the kept epoch, epochs run and seconds of each seed of the main
    recipe under ``overrides``, training the ones ``build`` lacks (Ray, as the build); and the dataset's path."""
    from report import engine, models
    from report.build import _load_model, make_context, plan
    ctx = make_context(data, None, overrides, profile, build)
    wanted = ("main",) + models.expand(ctx, "replicates")
    stale = [m for m in wanted if engine.stale(ctx, m)]
    if stale:
        print(f"training {', '.join(stale)} with {overrides or 'the default config'} into {build}", flush=True)
        with engine.running(ctx, _load_model) as eng:
            eng.submit(ctx, stale, plan(ctx, stale, ()))
            for name in stale:
                ctx.model(name)
    rows = []
    for name in wanted:
        card = ctx.model(name)[1]
        h = card["history"]
        rows.append({"model": name, "val_auc": float(card["val"]["auc"]),
                     "val_loss": float(h["val_loss"][card["best_epoch"] - 1]),
                     "best_epoch": int(card["best_epoch"]), "epochs": int(card["epochs_run"]),
                     "seconds": float(card["seconds"])})
    return rows, ctx.listing.root


def adopted(reference: list[dict], candidates: dict[int, list[dict]]) -> int | None:
    """The fewest epochs whose seeds' mean validation AUC >= the reference's lowest and mean validation loss
    <= the reference's highest; None when no candidate stays within the reference's seed spread."""
    auc_floor = min(r["val_auc"] for r in reference)
    loss_ceiling = max(r["val_loss"] for r in reference)
    ok = [e for e, rows in candidates.items()
          if np.mean([r["val_auc"] for r in rows]) >= auc_floor and np.mean([r["val_loss"] for r in rows]) <= loss_ceiling]
    return min(ok) if ok else None


def _line(label: str, rows: list[dict], ref_seconds: float) -> str:
    auc = [r["val_auc"] for r in rows]
    loss = [r["val_loss"] for r in rows]
    sec = float(np.mean([r["seconds"] for r in rows]))
    return (f"{label:>10}: val AUC mean {np.mean(auc):.4f} (seeds {', '.join(f'{a:.4f}' for a in auc)}); "
            f"val loss mean {np.mean(loss):.4f} (seeds {', '.join(f'{v:.4f}' for v in loss)}); "
            f"kept epochs {[r['best_epoch'] for r in rows]}; seconds per model x{sec / ref_seconds:.2f} of the reference")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, nargs="+", required=True, help="candidate epoch counts")
    ap.add_argument("--build", default="build", help="the build folder holding the reference models")
    ap.add_argument("--data", default=None)
    ap.add_argument("--profile", default=None, help='e.g. "quick", to try the script out')
    ap.add_argument("--candidates-only", action="store_true",
                    help="train (or read) the candidates only, no reference and no decision")
    args = ap.parse_args()
    from report.cli import quiet
    quiet(False)
    build = Path(args.build)
    if args.candidates_only:
        for e in args.epochs:
            rows, _ = seeds_of(args.data, [f"train.epochs={e}"], build / "schedule" / f"e{e}", args.profile)
            print(f"{e} epochs: trained or read {', '.join(r['model'] for r in rows)}")
        return
    reference, data = seeds_of(args.data, [], build, args.profile)
    ref_seconds = float(np.mean([r["seconds"] for r in reference]))
    candidates = {e: seeds_of(data, [f"train.epochs={e}"], build / "schedule" / f"e{e}", args.profile)[0]
                  for e in args.epochs}
    print(_line("reference", reference, ref_seconds))
    for e, rows in sorted(candidates.items()):
        print(_line(f"{e} epochs", rows, ref_seconds))
    chosen = adopted(reference, candidates)
    print("adopted by the validation rule:", f"train.epochs = {chosen}" if chosen else "none (keep the reference)")


if __name__ == "__main__":
    main()
