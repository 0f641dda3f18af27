"""The recorded cost of each stage of two builds side by side: by default the quick build
(build/quick) against the default build (build/), from the seconds their model cards and section
results record, with the ratio default / quick. Prints no test metric.

    .venv/bin/python bench/stages.py [QUICK_BUILD] [DEFAULT_BUILD]

The ratio is what the quick profile saves per stage; the absolute seconds depend on the machine and
on what else ran beside each build (run both alone for a fair table)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def costs(build: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for card in sorted((build / "models").glob("*.json")):
        c = json.loads(card.read_text())
        out[f"model {card.stem}"] = float(c.get("seconds") or 0.0)
    for res in sorted((build / "sections").glob("*/result.json")):
        out[res.parent.name] = float(json.loads(res.read_text()).get("seconds") or 0.0)
    return out


def main(argv: list[str]) -> None:
    quick = Path(argv[0]) if argv else ROOT / "build" / "quick"
    full = Path(argv[1]) if len(argv) > 1 else ROOT / "build"
    q, f = costs(quick), costs(full)
    if not q:
        raise SystemExit(f"no recorded stage in {quick}: build it first (invoke build-report --quick)")
    names = list(dict.fromkeys(list(f) + list(q)))
    print(f"{'stage':<22}{'quick s':>10}{'default s':>12}{'default/quick':>15}")
    for n in names:
        a, b = q.get(n), f.get(n)
        ratio = f"{b / a:.1f}" if a and b else "-"
        print(f"{n:<22}{a if a is not None else float('nan'):>10.1f}{b if b is not None else float('nan'):>12.1f}{ratio:>15}")
    tq, tf = sum(q.values()), sum(f.values())
    print(f"{'sum':<22}{tq:>10.1f}{tf:>12.1f}{(tf / tq if tq else float('nan')):>15.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
