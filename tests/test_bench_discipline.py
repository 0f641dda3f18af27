"""Benchmarks and selection scripts never read test labels or test metrics (MEASUREMENTS.md)."""

import re
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_bench_reads_no_test_labels_or_metrics():
    # catches: a selection script that prints card["test"] or scores p.y("test")
    pattern = re.compile(r"""\["test"\]|y\(\s*["']test["']\s*\)|at_val_threshold|test_(acc|auc|spec|sens)""")
    offenders = [f"{f.name}:{i}" for f in sorted(BENCH.glob("*.py"))
                 for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []
