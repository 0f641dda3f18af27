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


def test_the_schedule_rule_keeps_a_candidate_only_within_todays_seed_spread():
    # catches (#31 item 3): a candidate adopted on a better mean AUC although its loss is outside the reference's
    # spread, or the longest instead of the fewest epochs among those that qualify
    import importlib.util
    spec = importlib.util.spec_from_file_location("schedule", BENCH / "schedule.py")
    schedule = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schedule)
    ref = [{"val_auc": 0.990, "val_loss": 0.30}, {"val_auc": 0.995, "val_loss": 0.28}]
    good = [{"val_auc": 0.992, "val_loss": 0.29}] * 2
    lossy = [{"val_auc": 0.999, "val_loss": 0.31}] * 2
    assert schedule.adopted(ref, {12: good, 15: good}) == 12
    assert schedule.adopted(ref, {10: lossy, 15: good}) == 15
    assert schedule.adopted(ref, {10: lossy}) is None
    assert schedule.adopted(ref, {10: [{"val_auc": 0.990, "val_loss": 0.30}]}) == 10     # the edges are inside
