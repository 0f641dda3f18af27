"""Benchmark: an answer-template edit, rebuilt to HTML and PDF, wall clock.

Needs a finished build (by default the quick one: `invoke build-report --quick`). Each run
edits a sentence of `answers/q1_1.md` in a *copy* of templates/ (the project's templates are
never touched), rebuilds in a fresh Python process the way `invoke build-report` does
(input checks, then the build), and checks that the edit reached report.html. Two variants,
alternated in one run so that load on the machine hits both alike:

- "no TF": the build as it is (nothing stale, so TensorFlow is not imported);
- "with TF": the same, after `import tensorflow, keras` in that process (what every
  rebuild paid while the build imported TensorFlow up front).

Prints the median wall seconds of each, their ratio, where the time of the "no TF" rebuild
goes (and, per "no TF" run, which parts of the PDF were laid out again: report/pdfparts.py), the
PDF's pages and size and the figures' bytes. A final rebuild with the project's own
templates, by `invoke build-report` itself (timed too), leaves the report as it was. The quick build has fewer pages than the full one
(its grids are the same, its images 64 px; see the README), so quote both when comparing.

    .venv/bin/python bench/rebuild.py [--runs 5] [--full] [--build build]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
t0 = time.perf_counter()
if {with_tf}:
    import tensorflow, keras
t_tf = time.perf_counter()
from report.cli import quiet
from report.preflight import check_inputs
quiet(False)
check_inputs(profile={profile!r})
from report.build import build_report
t_import = time.perf_counter()
build_report(profile={profile!r}, build={build!r}, templates={templates!r})
t_end = time.perf_counter()
print(json.dumps({{"tf": t_tf - t0, "imports": t_import - t_tf, "build": t_end - t_import,
                   "tf_loaded": "tensorflow" in sys.modules}}))
"""


def _child_cpu() -> float:
    """CPU seconds (user + system) of finished child processes so far. On a machine shared
    with other jobs wall time stretches with the load; CPU time much less."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def rebuild(templates: Path, build: Path, profile: str | None, with_tf: bool) -> dict:
    code = CHILD.format(with_tf=with_tf, profile=profile, build=str(build), templates=str(templates))
    t0, c0 = time.perf_counter(), _child_cpu()
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _child_cpu() - c0
    if r.returncode != 0:
        sys.exit(f"rebuild failed:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    m = re.search(r"render computed ([\d.]+)s", r.stderr)
    parts = re.search(r"\[xaikit\] (PDF (?:in|rendered) .*)", r.stderr)
    out.update(wall=wall, cpu=cpu, render=float(m.group(1)) if m else float("nan"),
               fresh="rendering only" in r.stderr, parts=parts.group(1) if parts else "?")
    return out


def pages(pdf: Path) -> str:
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        m = re.search(r"Pages:\s+(\d+)", info)
        if m:
            return m.group(1)
    return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="time the full build instead of the quick one")
    ap.add_argument("--build", default=str(ROOT / "build"))
    args = ap.parse_args()
    profile = None if args.full else "quick"
    out = Path(args.build) / ("" if args.full else "quick")
    if not (out / "stages.json").exists():
        sys.exit(f"no finished build with stages.json in {out}; run "
                 f"`invoke build-report{'' if args.full else ' --quick'}` first")

    with tempfile.TemporaryDirectory() as tmp:
        templates = Path(tmp) / "templates"
        shutil.copytree(ROOT / "templates", templates)
        answer = templates / "answers" / "q1_1.md"
        original = answer.read_text("utf-8")
        times = {"no TF": [], "with TF": []}
        cpu = {"no TF": [], "with TF": []}
        details = []
        for i in range(args.runs):
            for name in ("no TF", "with TF") if i % 2 == 0 else ("with TF", "no TF"):
                token = f"Bench edit {i} {name.replace(' ', '-')}."
                answer.write_text(original.rstrip("\n") + f"\n\n{token}\n", "utf-8")
                res = rebuild(templates, Path(args.build), profile, name == "with TF")
                if token not in (out / "report.html").read_text("utf-8"):
                    sys.exit(f"the edit did not reach {out / 'report.html'}")
                times[name].append(res["wall"])
                cpu[name].append(res["cpu"])
                if name == "no TF":
                    details.append(res)
        # the report as it was, rebuilt by the command a user types (invoke's start-up included)
        cmd = [sys.executable, "-m", "invoke", "build-report", "--build", args.build]
        t0, c0 = time.perf_counter(), _child_cpu()
        r = subprocess.run(cmd + ([] if args.full else ["--quick"]), cwd=ROOT, capture_output=True,
                           text=True)
        cli, cli_cpu = time.perf_counter() - t0, _child_cpu() - c0
        if r.returncode != 0:
            sys.exit(f"invoke build-report failed:\n{r.stderr[-3000:]}")

    no_tf, with_tf = statistics.median(times["no TF"]), statistics.median(times["with TF"])
    cpu_no, cpu_with = statistics.median(cpu["no TF"]), statistics.median(cpu["with TF"])
    load = os.getloadavg()[0]
    d = {k: statistics.median(r[k] for r in details) for k in ("imports", "build", "render")}
    print(f"answer edit -> report.html + report.pdf, {profile or 'full'} build, {args.runs} runs each "
          f"(medians, fresh process; {os.cpu_count()} CPUs, load average {load:.1f}):")
    print(f"  no TF    {no_tf:6.2f} s wall  {cpu_no:6.2f} s CPU   (TensorFlow imported: "
          f"{details[0]['tf_loaded']}; stages.json fast path: {all(r['fresh'] for r in details)})")
    print(f"  with TF  {with_tf:6.2f} s wall  {cpu_with:6.2f} s CPU")
    print(f"  ratio with/without TF: {with_tf / no_tf:.2f} wall, {cpu_with / cpu_no:.2f} CPU")
    print(f"  `invoke build-report{'' if args.full else ' --quick'}` (project templates, one run): "
          f"{cli:.2f} s wall, {cli_cpu:.2f} s CPU")
    print(f"  no TF breakdown: project imports {d['imports']:.2f} s, build {d['build']:.2f} s of "
          f"which rendering (Jinja, Markdown, WeasyPrint) {d['render']:.2f} s; the rest is Python "
          f"start-up, listing and hashing the dataset")
    for r in details:
        print(f"  no TF run: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU; {r['parts']}")
    figs = [p for p in (out / "sections").glob("*/*") if p.suffix in (".png", ".jpg")]
    print(f"  report.pdf: {pages(out / 'report.pdf')} pages, {(out / 'report.pdf').stat().st_size / 1e6:.2f} MB; "
          f"figures: {len(figs)} files, {sum(p.stat().st_size for p in figs) / 1e6:.2f} MB "
          f"({sum(p.suffix == '.jpg' for p in figs)} JPEG)")


if __name__ == "__main__":
    main()
