"""The test images explained in Q3-Q5: chosen once, by a seeded rule, shared by all three."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xaikit.data import patient_id

from .context import Context


@dataclass(frozen=True)
class Samples:
    eval_idx: np.ndarray     # indices into Prepared: eval_per_class test images per class
    report_idx: np.ndarray   # the first samples_per_class of each class (shown in figures)

    @property
    def report_pos(self) -> np.ndarray:
        """Positions of the report images inside eval_idx."""
        where = {int(v): i for i, v in enumerate(self.eval_idx)}
        return np.array([where[int(v)] for v in self.report_idx])


RULE = ("{k} test images per class, one per patient id: the class's test images in the order of a numpy "
        "default_rng({seed}) permutation, each kept unless an earlier one has the same patient id; the first "
        "{r} of each class are the report images")


def choose(ctx: Context) -> Samples:
    p, a = ctx.prepared(), ctx.cfg.section("attribution")
    rng = np.random.default_rng(a["seed"])
    eval_idx, report_idx = [], []
    for label in (0, 1):
        pool = rng.permutation(np.flatnonzero((p.split == "test") & (p.labels == label)))
        picked = distinct_patients(pool, p.names, a["eval_per_class"])
        eval_idx.append(picked)
        report_idx.append(picked[:a["samples_per_class"]])
    return Samples(np.concatenate(eval_idx), np.concatenate(report_idx))


def distinct_patients(order: np.ndarray, names, k: int) -> np.ndarray:
    """The first ``k`` indices of ``order`` whose file name's patient id has not come before (a
    patient with several images counts once, so intervals over images are not over copies of
    one chest)."""
    seen, out = set(), []
    for i in order:
        pid = patient_id(Path(str(names[i])).name)
        if pid not in seen:
            seen.add(pid)
            out.append(int(i))
            if len(out) == k:
                break
    return np.array(out, dtype=int)


def rule(ctx: Context) -> str:
    a = ctx.cfg.section("attribution")
    return RULE.format(k=a["eval_per_class"], seed=a["seed"], r=a["samples_per_class"])
