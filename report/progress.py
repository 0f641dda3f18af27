"""Progress: tqdm bars for the long loops of the build, and the whole build's stage line."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from . import artifacts


@contextmanager
def bar(desc: str, total: int, unit: str = "it"):
    """Yields a callback ``update(n)`` for xaikit functions that accept ``progress``."""
    with tqdm(total=total, desc=f"[xaikit] {desc}", unit=unit, file=sys.stderr, leave=False,
              mininterval=1.0, disable=None) as t:
        yield t.update


def recorded_seconds(build: Path, stage: str) -> float | None:
    """What a stage cost when it last ran in ``build`` (its model card or section result, even a
    stale one); for a model never trained here, the mean of its family's cards (``random-3``
    from ``random-1``, ``random-2``; ``main-2`` from ``main``); None when nothing is recorded."""
    kind, _, name = stage.partition(" ")
    if kind == "section":
        res = artifacts.read_json(build / "sections" / name / "result.json")
        return float(res["seconds"]) if isinstance(res, dict) and "seconds" in res else None

    def cost(path: Path) -> float | None:
        card = artifacts.read_json(path)
        if not isinstance(card, dict):
            return None
        value = card.get("task_seconds", card.get("seconds"))
        return float(value) if isinstance(value, (int, float)) and value else None

    own = cost(build / "models" / f"{name}.json")
    if own is not None:
        return own
    family, _, idx = name.partition("-")
    pattern = f"{family}-all.json" if idx == "all" else (f"{family}*.json" if family == "main" else f"{family}-[0-9]*.json")
    known = [c for c in (cost(p) for p in sorted((build / "models").glob(pattern))) if c is not None]
    return sum(known) / len(known) if known else None


class Stages:
    """The build as stages (stale models and sections), one stderr line per event:
    ``stage 4 of 17: ...; about 23 min left``. Models submitted together run ``slots`` at a time;
    the time left is the recorded cost of what has not finished (models divided among the slots,
    less the time since the last of them finished; a section less the time it has run)."""

    def __init__(self, estimates: dict[str, float | None], say=None):
        self.estimates = dict(estimates)
        self.done: dict[str, float] = {}
        self.slots = 1
        self.batch: list[str] = []
        self.batch_t0 = time.perf_counter()
        self.current: tuple[str, float] | None = None
        self.say = say or (lambda msg: print(f"[xaikit] {msg}", file=sys.stderr, flush=True))
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return len(self.estimates)

    def add(self, stage: str, estimate: float | None) -> None:
        with self._lock:
            self.estimates.setdefault(stage, estimate)

    def left(self) -> tuple[float, int]:
        """(seconds left by the recorded costs, number of unfinished stages with no record)."""
        now = time.perf_counter()
        unknown = [s for s in self.estimates if s not in self.done and self.estimates[s] is None]
        batch = [self.estimates[s] or 0.0 for s in self.batch if s not in self.done]
        models = max(0.0, sum(batch) / self.slots - (now - self.batch_t0)) if batch else 0.0
        rest = 0.0
        for s, est in self.estimates.items():
            if s in self.done or s in self.batch or est is None:
                continue
            ran = now - self.current[1] if self.current and self.current[0] == s else 0.0
            rest += max(0.0, est - ran)
        return models + rest, len(unknown)

    def _line(self, what: str) -> str:
        seconds, unknown = self.left()
        plural = "s" if unknown > 1 else ""
        if seconds:
            eta = f"about {_duration(seconds)} left" + (f" + {unknown} stage{plural} never timed here" if unknown else "")
        else:
            eta = f"time left unknown ({unknown} stage{plural} never timed here)" if unknown else "nearly done"
        i = min(len(self.done) + 1, self.total)
        return f"stage {i} of {self.total}: {what}; {eta}"

    def parallel(self, slots: int, stages: list[str]) -> None:
        """Stages submitted together (models on Ray), ``slots`` of them at a time."""
        with self._lock:
            self.slots, self.batch, self.batch_t0 = max(1, slots), list(stages), time.perf_counter()
            for s in stages:
                self.estimates.setdefault(s, None)
            names = ", ".join(s.split(" ", 1)[1] for s in stages)
            self.say(self._line(f"{len(stages)} model{'s' if len(stages) > 1 else ''} submitted, "
                                f"{min(self.slots, len(stages))} at a time: {names}"))

    def start(self, stage: str) -> None:
        with self._lock:
            self.current = (stage, time.perf_counter())
            training = [s for s in self.batch if s not in self.done]
            also = f" (models still training: {len(training)})" if training and stage not in self.batch else ""
            self.say(self._line(f"{stage}{also}"))

    def waits(self, stage: str, models: list[str]) -> None:
        """Say that ``stage`` waits for those of ``models`` still training on Ray (nothing when none is):
        the line no longer names the previous section while the build waits."""
        with self._lock:
            pending = [m for m in models if m in self.batch and m not in self.done]
            if pending:
                names = ", ".join(m.split(" ", 1)[1] for m in pending)
                self.say(self._line(f"{stage} waits for {len(pending)} model{'s' if len(pending) > 1 else ''} "
                                    f"still training ({names})"))

    def finish(self, stage: str, seconds: float, detail: str | None = None) -> None:
        with self._lock:
            self.done[stage] = seconds
            for s, est in self.estimates.items():      # a sibling never timed here costs about as much
                if est is None and s not in self.done and _family(s) == _family(stage):
                    self.estimates[s] = seconds
            if self.current and self.current[0] == stage:
                self.current = None
            if detail:
                self.say(detail)
            if stage in self.batch:
                self.batch_t0 = time.perf_counter()     # the time left of the batch counts from here
                training = [s for s in self.batch if s not in self.done]
                self.say(self._line(f"{len(self.batch) - len(training)} of {len(self.batch)} models trained"))


def _family(stage: str) -> str:
    """``model random-3`` -> ``model random``; ``model random-all``, ``section q2`` stay as they are."""
    head, _, tail = stage.rpartition("-")
    return head if tail.isdigit() else stage


def _duration(seconds: float) -> str:
    """Whole minutes, at least one (an estimate from other runs is not finer than that)."""
    return f"{max(1, round(seconds / 60))} min"
