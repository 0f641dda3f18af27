"""Does a verdict of one trained model hold for the recipe? Verdict words over seeds.

The report states each Q3/Q4 verdict from the main model (seed 1). Trained again with other
seeds, the same recipe can reach other words; a verdict is a property of the recipe only when
every seed reaches it. These helpers count, and nothing else: the words themselves come from
the same rules that made the main model's verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Agreement:
    """How many of ``n`` seeds reach the ``word`` the report states."""

    word: str
    k: int
    n: int
    seeds: tuple[str, ...]       # the seeds that reach it

    @property
    def holds(self) -> bool:
        """Stated as holding for the recipe only when every seed reaches the word."""
        return self.n > 0 and self.k == self.n

    def as_dict(self) -> dict:
        return {"word": self.word, "k": self.k, "n": self.n, "seeds": list(self.seeds), "holds": self.holds}


def agreement(word: str, per_seed: dict[str, str]) -> Agreement:
    """Count the seeds (name -> that seed's word under the same rule) whose word equals ``word``."""
    if not per_seed:
        raise ValueError("agreement expects at least one seed's word, got none")
    same = tuple(name for name, w in per_seed.items() if w == word)
    return Agreement(word=word, k=len(same), n=len(per_seed), seeds=same)


def first_per_class(labels: np.ndarray, per_class: int, classes: Sequence[int] = (0, 1)) -> np.ndarray:
    """Positions of the first ``per_class`` entries of each class in ``labels`` (all of a class
    when it has fewer), class by class: the images every seed is explained on."""
    if per_class < 1:
        raise ValueError(f"per_class expects >= 1, got {per_class}")
    labels = np.asarray(labels)
    return np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in classes]).astype(int)
