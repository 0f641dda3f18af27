"""What a question module declares and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd


@dataclass(frozen=True)
class Sub:
    """One numbered sub-question: its answer template and the figures/tables shown with it."""

    number: str                 # "Q1.1"
    title: str
    answer: str                 # file name under templates/answers/
    figures: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A question module's declaration: what it depends on and how its report part looks.

    ``sources`` are the files whose content decides staleness (the module itself and the
    xaikit modules it calls); ``config`` the key prefixes it reads; ``models`` the cached
    models it needs; ``after`` sections whose outputs (numbers or saved maps) it reads.
    """

    name: str                   # "q1"
    title: str
    run: Callable               # run(ctx) -> Result
    sources: tuple[Path, ...]
    config: tuple[str, ...]
    subs: tuple[Sub, ...]
    models: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


@dataclass
class Result:
    """What ``run`` returns: numbers (nested dicts of plain values), figures and tables."""

    numbers: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)   # id -> (matplotlib Figure, caption)
    tables: dict = field(default_factory=dict)    # id -> (pandas DataFrame, caption)

    def figure(self, fid: str, fig, caption: str) -> None:
        self.figures[fid] = (fig, caption)

    def table(self, tid: str, frame: pd.DataFrame, caption: str) -> None:
        self.tables[tid] = (frame, caption)
