"""The test images explained in Q3-Q5: chosen once, by a seeded rule, shared by all three."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


RULE = ("{k} test images per class drawn with numpy default_rng({seed}) without replacement; "
        "the first {r} of each class are the report images")


def choose(ctx: Context) -> Samples:
    p, a = ctx.prepared(), ctx.cfg.section("attribution")
    rng = np.random.default_rng(a["seed"])
    eval_idx, report_idx = [], []
    for label in (0, 1):
        pool = np.flatnonzero((p.split == "test") & (p.labels == label))
        k = min(a["eval_per_class"], len(pool))
        picked = rng.choice(pool, size=k, replace=False)
        eval_idx.append(picked)
        report_idx.append(picked[:a["samples_per_class"]])
    return Samples(np.concatenate(eval_idx), np.concatenate(report_idx))


def rule(ctx: Context) -> str:
    a = ctx.cfg.section("attribution")
    return RULE.format(k=a["eval_per_class"], seed=a["seed"], r=a["samples_per_class"])
