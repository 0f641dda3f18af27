"""The build: decide what is stale by content hashes, run what is, render HTML and PDF."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from xaikit.data import discover
from xaikit.errors import DataError

from . import artifacts, models
from .context import ROOT, Context, log, make_strategy
from .preflight import data_path, read_config
from .registry import SECTIONS

def make_context(data: str | None, config: str | None, overrides=(), profile: str | None = None,
                 build: str | Path = ROOT / "build", strategy: str = "default") -> Context:
    cfg = read_config(config, overrides, profile)
    build = Path(build)
    if cfg.profile != "full":
        build = build / cfg.profile      # a profile never overwrites the full build's artifacts
    root = data_path(data)
    log(f"dataset {root}")
    listing = discover(root)
    make_strategy(strategy)      # validate the name early
    build.mkdir(parents=True, exist_ok=True)
    return Context(cfg, listing, build, strategy_name=strategy, model_loader=models.get)


SPLIT_MINIMUM = {"train": 1, "val": 1, "test": 2}   # per class: Youden needs both classes in
                                                   # val, consistency two maps per class in test


def check_splits(ctx: Context) -> None:
    """Refuse, with one line, a dataset too small for the study once validation is carved."""
    p = ctx.prepared()
    for split, k in SPLIT_MINIMUM.items():
        counts = [int(np.sum(p.labels[p.split == split] == c)) for c in (0, 1)]
        if min(counts) < k:
            hint = ("add training images of more patients or raise data.val_fraction" if split == "val"
                    else f"add {split} images")
            raise DataError(f"{ctx.listing.root}: after decoding and carving validation from train, the "
                            f"{split} split has {counts[0]} NORMAL and {counts[1]} PNEUMONIA images; "
                            f"expected at least {k} of each ({hint})")


def retire_report(build: Path) -> None:
    """Delete the previous report once a build really starts: if it then fails, no stale
    report looks current. An input error (raised before this) leaves it in place."""
    for name in ("report.html", "report.pdf"):
        (build / name).unlink(missing_ok=True)


def section_key(ctx: Context, section, keys: dict) -> str:
    return artifacts.digest(section.name, ctx.data_key, ctx.cfg.digest(section.config),
                            artifacts.source_digest(list(section.sources)),
                            [models.key(ctx, m) for m in models.expand_all(ctx, section.models)],
                            [keys[a] for a in section.after], ctx.cfg.profile)


def _save_result(ctx: Context, section, result, key: str, seconds: float) -> None:
    final = ctx.build / "sections" / section.name
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{section.name}."))
    figures = {}
    for fid, (fig, caption) in result.figures.items():
        artifacts.atomic_save_figure(fig, tmp / f"{fid}.png")
        figures[fid] = {"file": f"sections/{section.name}/{fid}.png", "caption": caption}
    tables = {fid: {"html": frame.to_html(index=False, float_format=lambda v: f"{v:.3f}",
                                          border=0, classes="data", escape=True),
                    "caption": caption}
              for fid, (frame, caption) in result.tables.items()}
    artifacts.atomic_write_json(tmp / "result.json", {
        "key": key, "seconds": seconds, "numbers": result.numbers,
        "figures": figures, "tables": tables})
    artifacts.atomic_replace_dir(tmp, final)


def load_result(ctx: Context, name: str, key: str | None = None) -> dict | None:
    res = artifacts.read_json(ctx.build / "sections" / name / "result.json")
    if res is None or (key is not None and res.get("key") != key):
        return None
    return res


def forget_models(ctx: Context, force: tuple[str, ...]) -> None:
    """Delete the cached models that ``force`` names (or all, with "all") so they retrain."""
    for m in models.names(ctx):
        kind = m.partition("-")[0]
        if "all" in force or m in force or kind in force or f"model-{m}" in force:
            for p in models.paths(ctx, m):
                p.unlink(missing_ok=True)


def run_sections(ctx: Context, force: tuple[str, ...] = (), until: str | None = None) -> dict:
    """Run every stale section in registry order (up to and including ``until``);
    return name -> stored result."""
    keys: dict[str, str] = {}
    results: dict[str, dict] = {}
    force_all = "all" in force
    forget_models(ctx, force)
    names = [s.name for s in SECTIONS]
    last = names.index(until) + 1 if until else len(names)
    for section in SECTIONS[:last]:
        keys[section.name] = key = section_key(ctx, section, keys)
        stored = None if (force_all or section.name in force) else load_result(ctx, section.name, key)
        if stored is not None:
            ctx.timings.append((section.name, "reused", 0.0))
            results[section.name] = stored
            continue
        for m in models.expand_all(ctx, section.models):
            ctx.model(m)                  # train/load models first: their time is their own
        log(f"section {section.name}: computing")
        t0 = time.perf_counter()
        result = section.run(ctx)
        seconds = time.perf_counter() - t0
        _save_result(ctx, section, result, key, seconds)
        ctx.timings.append((section.name, "computed", seconds))
        results[section.name] = load_result(ctx, section.name, key)
    return results


def build_report(data: str | None = None, config: str | None = None, overrides=(),
                 profile: str | None = None, force: tuple[str, ...] = (),
                 build: str | Path = ROOT / "build", pdf: bool = True,
                 templates: str | Path = ROOT / "templates", strategy: str = "default") -> Path:
    """The whole job: returns the path of the HTML report (the PDF lies beside it)."""
    t0 = time.perf_counter()
    ctx = make_context(data, config, overrides, profile, build, strategy)
    check_splits(ctx)
    retire_report(ctx.build)
    results = run_sections(ctx, force)
    from .explorer import build_step
    build_step(ctx, results)                  # before rendering: the report links to it
    from .render import render
    t1 = time.perf_counter()
    html_path = render(ctx, results, pdf=pdf, templates=Path(templates))
    ctx.timings.append(("render", "computed", time.perf_counter() - t1))
    summary = "; ".join(f"{name} {how} {sec:.1f}s" for name, how, sec in ctx.timings)
    log(f"stages: {summary}")
    log(f"done in {time.perf_counter() - t0:.1f} s: {html_path} and {html_path.with_suffix('.pdf')}")
    return html_path


def run_stage(stage: str, data: str | None = None, config: str | None = None, overrides=(),
              profile: str | None = None, force: tuple[str, ...] = (),
              build: str | Path = ROOT / "build", strategy: str = "default") -> None:
    """Bring one model or section (and what it needs) up to date without rendering."""
    ctx = make_context(data, config, overrides, profile, build, strategy)
    if stage != "q1":
        check_splits(ctx)
    if stage in models.names(ctx) or stage in models.KINDS:
        forget_models(ctx, force)
        for name in models.expand(ctx, stage):
            _, card = ctx.model(name)
            log(f"model {name}: {models.card_summary(card)}")
        return
    names = [s.name for s in SECTIONS]
    if stage not in names:
        from xaikit.errors import XaikitError
        raise XaikitError(f"unknown stage {stage!r}; expected one of {list(models.KINDS + models.names(ctx)) + names}")
    run_sections(ctx, force, until=stage)


def clean(build: str | Path = ROOT / "build") -> None:
    shutil.rmtree(build, ignore_errors=True)
