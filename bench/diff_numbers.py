"""Diff two numbers.json files recursively: ``python bench/diff_numbers.py A.json B.json [--tol X]``.

Prints one line per difference (a changed value, a key only in A or only in B, a list of another
length), with its path; provenance and timing fields are ignored (they differ between any two
builds). Floats are compared exactly unless ``--tol`` is given. Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

IGNORED = {"provenance", "seconds", "computed_at", "device", "timings", "built_at"}


def _short(v, width: int = 160) -> str:
    s = json.dumps(v, sort_keys=True)
    return s if len(s) <= width else s[:width - 3] + "..."


def diff(a, b, path: str = "", tol: float = 0.0) -> list[str]:
    """Every difference between ``a`` and ``b`` as "path: A -> B" lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k in IGNORED:
                continue
            p = f"{path}.{k}" if path else str(k)
            if k not in b:
                out.append(f"- {p}: {_short(a[k])} (only in A)")
            elif k not in a:
                out.append(f"+ {p}: {_short(b[k])} (only in B)")
            else:
                out += diff(a[k], b[k], p, tol)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"~ {path}: a list of {len(a)} -> {len(b)}: {_short(a)} -> {_short(b)}"]
        return [line for i, (u, v) in enumerate(zip(a, b)) for line in diff(u, v, f"{path}[{i}]", tol)]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or \
            (tol > 0 and math.isclose(a, b, rel_tol=tol, abs_tol=tol))
        return [] if same else [f"~ {path}: {a!r} -> {b!r}"]
    return [] if a == b and type(a) is type(b) else [f"~ {path}: {_short(a)} -> {_short(b)}"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=0.0, help="relative and absolute tolerance for numbers")
    args = ap.parse_args(argv)
    with open(args.a) as fa, open(args.b) as fb:
        lines = diff(json.load(fa), json.load(fb), tol=args.tol)
    print("\n".join(lines) if lines else "no differences")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
