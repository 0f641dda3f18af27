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

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from xaikit import seeds as xseeds
from xaikit.data import CLASSES

from . import measures, models
from .context import Context

REGION_WORDS = ("lung_", "input_")     # the per-class words behind a region answer ("Partly", "Yes", "No")
RULE = ("the first {k} test images per class of Q3's sample ({n} images; the images Q5 compares across models), "
        "each seed explaining its own decisions at its own validation threshold")


def replicates(ctx: Context) -> list[tuple[str, object, dict]]:
    """(name, model, card) of every seed of the main recipe, ``main`` first."""
    return [(name, *ctx.model(name)) for name in ("main",) + models.expand(ctx, "replicates")]


def positions(ctx: Context, labels: np.ndarray) -> np.ndarray:
    """Positions in Q3's sample of the images every seed is explained on."""
    return xseeds.first_per_class(labels, ctx.cfg["sanity.images_per_class"])


def names_text(names) -> str:
    """"main", "main and main-3", "main, main-2 and main-3"; "" for none."""
    names = list(names)
    if not names:
        return ""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@dataclass(frozen=True)
class SeedWord:
    """One seed's word on the images every seed is explained on, and the number it rests on."""

    model: str
    word: str
    estimate: object          # an interval dict, a dict of them, or None (a derived word)


@dataclass(frozen=True)
class SeedVerdict:
    """One verdict checked over the seeds of the main recipe, as a value: what it is about, the
    rule and its cut-offs, the word the report states (the main model on all its explained images),
    the reference every seed is compared with (the main model's word recomputed on the images the
    seeds share, so that every word compared comes from the same images), each seed's word and
    estimate there, and which seeds reach the reference. Every sentence about this verdict's
    agreement across seeds is composed here, from these fields."""

    key: str
    about: str
    rule: str
    cutoffs: tuple[tuple[str, float], ...]
    stated: str
    stated_estimate: object
    n_stated_images: int
    reference: str
    n_images: int
    seeds: tuple[SeedWord, ...]
    derived: bool = False     # built from other verdicts (the region answer): not counted beside them

    @property
    def reaching(self) -> tuple[str, ...]:
        return xseeds.agreement(self.reference, {s.model: s.word for s in self.seeds}).seeds

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s.model for s in self.seeds if s.model not in self.reaching)

    @property
    def holds(self) -> bool:
        return xseeds.agreement(self.reference, {s.model: s.word for s in self.seeds}).holds

    @property
    def stated_differs(self) -> bool:
        return self.stated != self.reference

    def who(self) -> str:
        """Which seeds reach the reference: "holds for all 3 seeds", "holds for main and main-3, not for
        main-2 (2 of 3 seeds)"; the seeds named are the ones that reach it and the ones that miss it."""
        n, k = len(self.seeds), len(self.reaching)
        if n == 1:
            return "one seed only"
        if k == n:
            return "holds for both seeds" if n == 2 else f"holds for all {n} seeds"
        if k == 0:
            return f"is reached by none of the {n} seeds"
        return f"holds for {names_text(self.reaching)}, not for {names_text(self.missing)} ({k} of {n} seeds)"

    def reach(self, pronoun: str = "it") -> str:
        """The short form for a list of verdicts: "main and main-3 reach it, main-2 does not"."""
        k, m = len(self.reaching), len(self.missing)
        if k == 0:
            return f"no seed reaches {pronoun}"
        return (f"{names_text(self.reaching)} {'reaches' if k == 1 else 'reach'} {pronoun}"
                + (f", {names_text(self.missing)} {'does' if m == 1 else 'do'} not" if m else ""))

    def text(self) -> str:
        """The agreement phrase a verdict sentence carries ("..., not for the recipe" when some seed
        misses it); when the main model's word on the seeds' images differs from the word stated from
        all its explained images, it says so."""
        who = self.who() + (", not for the recipe" if self.missing and len(self.seeds) > 1 else "")
        if not self.stated_differs:
            return who
        return (f"{who}, on the {self.n_images} images every seed is explained on, where the main model's own word "
                f"is \"{self.reference}\" (from all {self.n_stated_images} images: \"{self.stated}\")")

    def line(self) -> str:
        """The verdict's line in Q3.5 / Q4.5: what it is about, the word, the agreement, other words."""
        others = "; ".join(f'{s.model} "{s.word}"' for s in self.seeds if s.model not in self.reaching)
        derived = " (derived from the per-class words below; not counted as a verdict of its own)" if self.derived else ""
        return (f'{self.about}: "{self.reference}", {self.text()}' + (f" (other words: {others})" if others else "")
                + derived + ".")

    def as_dict(self) -> dict:
        return {"word": self.reference, "reference": self.reference, "stated": self.stated,
                "stated_differs": self.stated_differs, "stated_estimate": self.stated_estimate,
                "n_stated_images": self.n_stated_images, "n_images": self.n_images,
                "k": len(self.reaching), "n": len(self.seeds), "seeds": list(self.reaching),
                "missing": list(self.missing), "holds": self.holds, "derived": self.derived,
                "about": self.about, "rule": self.rule, "cutoffs": dict(self.cutoffs),
                "words": {s.model: s.word for s in self.seeds},
                "estimates": {s.model: s.estimate for s in self.seeds},
                "others": {s.model: s.word for s in self.seeds if s.model not in self.reaching},
                "text": self.text(), "line": self.line()}


@dataclass(frozen=True)
class Spec:
    """How one seed-checked verdict is read: what it is about, its rule (a format string over its
    cut-offs), the cut-offs from the section's settings, the estimate it rests on in a seed's row and
    in the section's numbers, and whether it is derived from other verdicts."""

    about: str
    rule: str
    cutoffs: Callable[[dict], dict]
    seed_estimate: Callable[[dict], object]
    stated_estimate: Callable[[dict], object]
    derived: bool = False


def _none(_):
    return None


def shared_specs(method: str, question: str) -> dict[str, Spec]:
    """The verdicts Q3 and Q4 share (``method``: "|IG|" or "Grad-CAM"; ``question``: "Q3" or "Q4")."""
    lung = ("lung share / lung area: \"concentrated\" when its whole interval lies at or above {lung_cut:.2f}, "
            "\"not concentrated\" when it lies below, else \"not clearly concentrated\"")
    beyond = ("lung share of the map minus that of the input alone, over the lung area: \"more\" when its interval "
              "lies above {null}, \"less\" when below, else \"no more and no less\"")
    specs = {"answer": Spec(f"the answer to {question}.2 (sensible regions)",
                            f"derived from each class's lung, border, input-alone, learned-nothing and prior words by "
                            f"the rule of {question}.2", lambda st: {},
                            _none, _none, derived=True)}
    for k in CLASSES:
        specs[f"lung_{k}"] = Spec(f"{method} in the lung fields, {k} images", lung,
                                  lambda st: {"lung_cut": 1 + st["lung_margin"]},
                                  lambda r, k=k: r["lung_ratio"][k], lambda n, k=k: n["regions"][k]["map"]["lung_ratio"])
    for k in CLASSES:
        specs[f"input_{k}"] = Spec(f"lung mass against the input alone, {k} images", beyond, lambda st: {"null": 0},
                                   lambda r, k=k: r["vs_input"][k], lambda n, k=k: n["regions"][k]["vs_input"])
    specs["consistency_level"] = Spec(
        f"the consistency level ({question}.3)",
        "mean pairwise Spearman within each explained class: \"high\" when its whole interval lies at or above "
        "{high}, \"moderate\" when it lies in [{moderate}, {high}), \"low\" when wholly below {moderate}, else the "
        "two levels it spans", lambda st: {"moderate": st["consistency_moderate"],
                                                               "high": st["consistency_high"]},
        lambda r: r["within"], lambda n: n["consistency"]["within"])
    specs["specific_beyond_learned"] = Spec(
        f"class-specific beyond a model that learned nothing ({question}.3)",
        "within-minus-across Spearman of the maps minus that of the counted random-label models' own maps of the same "
        "images and targets: \"more class-specific\" when its interval lies above {null}, else \"no more\" "
        "(\"cannot tell\" without a counted model)", lambda st: {"null": 0}, lambda r: r["specificity_vs_learned"],
        lambda n: n["consistency"]["learned"]["difference"])
    specs["specific_beyond_input"] = Spec(
        f"class-specific beyond the input ({question}.3)",
        "within-minus-across Spearman of the maps minus that of the input alone (paired): \"more\" when its "
        "interval lies above {null}, \"less\" when below, else \"not shown to be more or less\"",
        lambda st: {"null": 0}, lambda r: r["specificity_vs_input"], lambda n: n["consistency"]["vs_input"]["specificity"])
    return specs


def verdicts(stated: dict[str, str], numbers: dict, rows: list[dict], specs: dict[str, Spec], st: dict,
             n_stated_images: int) -> list[SeedVerdict]:
    """One :class:`SeedVerdict` per key of ``specs`` (in that order): ``stated`` the words the report
    states from the main model on all ``n_stated_images`` images (section numbers ``numbers``),
    ``rows`` each seed's row on the images the seeds share, ``main`` first: the main model's row is
    the reference every seed is judged against (the same images for every word compared)."""
    main = next(r for r in rows if r["model"] == "main")
    out = []
    for key, spec in specs.items():
        cut = spec.cutoffs(st)
        out.append(SeedVerdict(
            key=key, about=spec.about, rule=spec.rule.format(**cut), cutoffs=tuple(cut.items()),
            stated=stated[key], stated_estimate=spec.stated_estimate(numbers), n_stated_images=int(n_stated_images),
            reference=main["words"][key], n_images=int(main["n"]),
            seeds=tuple(SeedWord(r["model"], r["words"][key], spec.seed_estimate(r)) for r in rows),
            derived=spec.derived))
    return out


def missed_text(missed: list[SeedVerdict]) -> str:
    """The verdicts some seed misses, those missed by the same seeds named once: "the consistency level
    (Q3.3) and class-specific beyond the input (Q3.3) — main reaches them, main-2 does not; on ...";
    one group per pattern of reaching seeds, in the order the verdicts come. Within a group the verdicts
    are joined by "and" (their names hold commas), the groups by semicolons."""
    groups: dict[tuple, list[SeedVerdict]] = {}
    for v in missed:
        groups.setdefault((v.reaching, v.missing), []).append(v)
    return "; on ".join(" and ".join(v.about for v in vs) + " — " + vs[0].reach("them" if len(vs) > 1 else "it")
                        for vs in groups.values())


def summary(ctx: Context, labels: np.ndarray, stated: dict[str, str], numbers: dict, rows: list[dict],
            specs: dict[str, Spec], st: dict) -> dict:
    """numbers for ``q3.seeds`` / ``q4.seeds``: the rule, each seed's row, and per verdict the
    :class:`SeedVerdict` as a dict (``holds`` only when every seed reaches the main model's word on
    the same images). Derived verdicts (the region answer) are listed but not counted."""
    pos = positions(ctx, labels)
    values = verdicts(stated, numbers, rows, specs, st, len(labels))
    agree = {v.key: v.as_dict() for v in values}
    counted = [v for v in values if not v.derived]
    holding = sum(v.holds for v in counted)
    missed = [v for v in counted if not v.holds]
    return {"n": len(rows), "several": len(rows) > 1, "models": [r["model"] for r in rows],
            "models_text": ", ".join(r["model"] for r in rows),
            "images": int(len(pos)), "images_per_class": ctx.cfg["sanity.images_per_class"],
            "rule": RULE.format(k=ctx.cfg["sanity.images_per_class"], n=len(pos)),
            "rows": rows, "holds": agree, "all_hold": holding == len(counted), "n_holding": int(holding),
            "not_holding": [v.key for v in missed],
            "missed": missed_text(missed),
            "region_words_hold": all(v.holds for v in counted if v.key.startswith(REGION_WORDS)),
            "n_verdicts": len(counted),
            "answer": ("Yes" if holding == len(counted) else "No" if holding == 0 else "Partly"),
            "verdicts": [agree[v.key] for v in values]}


TOO_FEW = "cannot tell (fewer than two maps of an explained class)"


class ConsistencyWords(NamedTuple):
    """One seed's consistency verdicts and the numbers they rest on (None when it cannot tell)."""

    level: str
    specific: str
    specificity: dict | None      # the paired interval, maps minus input alone
    within: dict | None           # the within-class intervals behind the level
    learned_word: str = TOO_FEW   # class-specific beyond the models that learned nothing (Q3.3 / Q4.3's rule)
    vs_learned: dict | None = None  # the paired interval, maps minus those models' maps


def consistency_words(maps: np.ndarray, input_alone: np.ndarray, st: dict, *, labels: np.ndarray,
                      targets: np.ndarray, learned: dict | None = None, none_reason: str = "") -> ConsistencyWords:
    """(consistency level, class-specific beyond the input, the paired interval, the within-class
    intervals) of one seed's maps, grouped by its explained targets, by the rules of Q3.3/Q4.3; with ``learned``
    (the counted random-label models' own maps of the same images at the seed's targets, see
    :func:`report.learned.own_maps`; empty: none counted, ``none_reason`` says why) also the word against them. A
    seed that decides fewer than two images of a class gets :data:`TOO_FEW` for every word (and so does not reach
    the main's words)."""
    n_per_class = [int(np.sum(np.asarray(targets) == k)) for k in (0, 1)]
    if min(n_per_class) < 2:
        return ConsistencyWords(TOO_FEW, TOO_FEW, None, None)
    c = measures.consistency_numbers(maps, {"input": input_alone}, st, labels=labels, targets=targets)
    if learned is None:
        return ConsistencyWords(c["level"], c["vs_input"]["specific"], c["vs_input"]["specificity"], c["within"])
    lw = measures.learned_specificity(maps, input_alone, learned, targets, st, c, none_reason=none_reason)
    return ConsistencyWords(c["level"], c["vs_input"]["specific"], c["vs_input"]["specificity"], c["within"],
                            lw["word"], lw["difference"])


def shared_words(regions: dict, level: str, specific: str, beyond_learned: str) -> dict:
    """The verdict words Q3 and Q4 share, of one seed: the region answer, each class's lung word and
    word against the input alone, the consistency level, class-specificity beyond the models that learned nothing
    and beyond the input."""
    words = {"answer": regions["answer"], "consistency_level": level, "specific_beyond_input": specific,
             "specific_beyond_learned": beyond_learned}
    for k in ("NORMAL", "PNEUMONIA"):
        words[f"lung_{k}"], words[f"input_{k}"] = regions[k]["lung_word"], regions[k]["beyond_input"]
    return words


def shared_reference(n: dict) -> dict:
    """The same words as the report states them from the main model (a section's numbers ``n``)."""
    c = n["consistency"]
    return shared_words(n["regions"], c["level"], c["vs_input"]["specific"], c["learned"]["word"])


def ci_text(e: dict | None, digits: int = 2) -> str:
    if e is None:
        return "-"
    return f"{e['value']:.{digits}f} [{e['lo']:.{digits}f}, {e['hi']:.{digits}f}]"


def table(rows: list[dict], columns: dict[str, callable]) -> pd.DataFrame:
    """One row per seed: model, seed, threshold, then ``columns`` (title -> function of the row)."""
    return pd.DataFrame([{"model": r["model"], "seed": r["seed"], "threshold": f"{r['threshold']:.3f}",
                          **{title: f(r) for title, f in columns.items()}} for r in rows])
