"""The seeds of the main recipe in Q3 and Q4 (issue #20): the headline verdicts, reached again by
every seed on the same images.

Every seed (``main``, ``main-2`` .. ``main-r``, see :mod:`report.models`) is explained on the same
test images, the first ``sanity.images_per_class`` of each class of Q3's sample (the images Q5
compares across models), each seed explaining its own decisions at its own validation threshold.
Each seed's verdict words come from the same rules as the main model's; a verdict is said to hold
for the recipe only when every seed reaches the word the report states (``xaikit.seeds``). The
main model's full-sample verdict is the reference, so the main model on the smaller set counts as
one of the seeds and can miss it too (fewer images, wider intervals).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaikit import seeds as xseeds

from . import measures, models
from .context import Context, lib

SOURCES = lib("seeds") + [Path(__file__)] + measures.SOURCES
REGION_WORDS = ("lung_", "input_")     # the per-class words behind a region answer ("Partly", "Yes", "No")
RULE = ("the first {k} test images per class of Q3's sample ({n} images; the images Q5 compares across models), "
        "each seed explaining its own decisions at its own validation threshold")


def replicates(ctx: Context) -> list[tuple[str, object, dict]]:
    """(name, model, card) of every seed of the main recipe, ``main`` first."""
    return [(name, *ctx.model(name)) for name in ("main",) + models.expand(ctx, "replicates")]


def positions(ctx: Context, labels: np.ndarray) -> np.ndarray:
    """Positions in Q3's sample of the images every seed is explained on."""
    return xseeds.first_per_class(labels, ctx.cfg["sanity.images_per_class"])


def phrase(a: xseeds.Agreement) -> str:
    """The words a verdict sentence carries about its seeds."""
    if a.holds:
        return f"holds for all {a.n} seeds" if a.n > 1 else "one seed only"
    return f"holds for the main model only ({a.k} of {a.n} seeds reach it), not for the recipe"


def summary(ctx: Context, labels: np.ndarray, reference: dict[str, str], rows: list[dict],
            names: dict[str, str]) -> dict:
    """numbers for ``q3.seeds`` / ``q4.seeds``: the rule, each seed's row, and per verdict key
    (``names``: key -> what the verdict is about) how many seeds reach the main model's word
    (``holds`` only when all do), with the phrase a sentence carries."""
    pos = positions(ctx, labels)
    agree = {}
    for key in sorted(reference, key=list(names).index):      # in the order of ``names``
        word = reference[key]
        a = xseeds.agreement(word, {r["model"]: r["words"][key] for r in rows})
        agree[key] = {**a.as_dict(), "text": phrase(a), "about": names[key],
                      "others": {r["model"]: r["words"][key] for r in rows if r["words"][key] != word}}
    holding = sum(a["holds"] for a in agree.values())
    return {"n": len(rows), "several": len(rows) > 1, "models": [r["model"] for r in rows],
            "images": int(len(pos)), "images_per_class": ctx.cfg["sanity.images_per_class"],
            "rule": RULE.format(k=ctx.cfg["sanity.images_per_class"], n=len(pos)),
            "rows": rows, "holds": agree, "all_hold": holding == len(agree), "n_holding": int(holding),
            "not_holding": [key for key, a in agree.items() if not a["holds"]],
            "region_words_hold": all(a["holds"] for key, a in agree.items() if key.startswith(REGION_WORDS)),
            "n_verdicts": len(agree), "answer": ("Yes" if holding == len(agree) else "No" if holding == 0 else "Partly"),
            "verdicts": list(agree.values())}


TOO_FEW = "cannot tell (fewer than two maps of an explained class)"


def consistency_words(maps: np.ndarray, input_alone: np.ndarray, st: dict, *, labels: np.ndarray,
                      targets: np.ndarray) -> tuple[str, str, dict | None]:
    """(consistency level, class-specific beyond the input, the paired interval) of one seed's maps,
    grouped by its explained targets, by the rules of Q3.3/Q4.3; a seed that decides fewer than two
    images of a class gets :data:`TOO_FEW` for both words (and so does not reach the main's words)."""
    n_per_class = [int(np.sum(np.asarray(targets) == k)) for k in (0, 1)]
    if min(n_per_class) < 2:
        return TOO_FEW, TOO_FEW, None
    c = measures.consistency_numbers(maps, {"input": input_alone}, st, labels=labels, targets=targets)
    return c["level"], c["vs_input"]["specific"], c["vs_input"]["specificity"]


def shared_words(regions: dict, level: str, specific: str) -> dict:
    """The verdict words Q3 and Q4 share, of one seed: the region answer, each class's lung word and
    word against the input alone, the consistency level and class-specificity beyond the input."""
    words = {"answer": regions["answer"], "consistency_level": level, "specific_beyond_input": specific}
    for k in ("NORMAL", "PNEUMONIA"):
        words[f"lung_{k}"], words[f"input_{k}"] = regions[k]["lung_word"], regions[k]["beyond_input"]
    return words


def shared_reference(n: dict) -> dict:
    """The same words as the report states them from the main model (a section's numbers ``n``)."""
    return shared_words(n["regions"], n["consistency"]["level"], n["consistency"]["vs_input"]["specific"])


def ci_text(e: dict | None, digits: int = 2) -> str:
    if e is None:
        return "-"
    return f"{e['value']:.{digits}f} [{e['lo']:.{digits}f}, {e['hi']:.{digits}f}]"


def table(rows: list[dict], columns: dict[str, callable]) -> pd.DataFrame:
    """One row per seed: model, seed, threshold, then ``columns`` (title -> function of the row)."""
    return pd.DataFrame([{"model": r["model"], "seed": r["seed"], "threshold": f"{r['threshold']:.3f}",
                          **{title: f(r) for title, f in columns.items()}} for r in rows])
