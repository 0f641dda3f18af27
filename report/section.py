"""What a question module declares and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd


class Appendix(str):
    """A figure or table id that prints in the "Methods and statistics" appendix, in this
    sub-question's item there (linked both ways), instead of in the body:
    ``tables=("q2_metrics", Appendix("q2_seeds"))``. Prose moves the same way: in an answer
    template, text after a line ``<!-- methods -->`` goes to the appendix item, text after a
    line ``<!-- body -->`` comes back to the body (see :func:`report.render.split_parts`)."""

    __slots__ = ()


@dataclass(frozen=True)
class Sub:
    """One numbered sub-question: its answer template and the figures/tables shown with it
    (an id wrapped in :class:`Appendix` prints in the appendix)."""

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
    models it needs. A section reads no other section's output: maps come from the map store
    (report/maps.py), so no key holds another's and the order of the registry is only the report's.
    """

    name: str                   # "q1"
    title: str
    run: Callable               # run(ctx) -> Result
    sources: tuple[Path, ...]
    config: tuple[str, ...]
    subs: tuple[Sub, ...]
    models: tuple[str, ...] = ()


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
