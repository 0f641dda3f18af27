"""The build: decide what is stale by content hashes, run what is, render HTML and PDF.

TensorFlow is imported only when a stage must run. After a complete build, ``stages.json``
records the fingerprint of everything the stage keys are made of (the dataset listing, the
whole config, the profile and the content of every source file a key reads, the key code
included) with the keys and the report's outline. When a later build finds the same
fingerprint, every stage key is necessarily unchanged: it reads the stored results and
renders, without importing the question modules (hence TensorFlow). Anything else (a
changed input, ``--force``, a missing result) takes the full path, which decides per stage.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xaikit.data import discover
from xaikit.errors import DataError

from . import artifacts, figures
from .context import DATA_SOURCES, ROOT, Context, log, make_strategy
from .preflight import DATASET_FILE, data_choice, read_config, remembered
from .progress import Stages, recorded_seconds
from .provenance import device

MANIFEST = "stages.json"


def _load_model(ctx: Context, name: str):
    """report.models.get, imported when a model is first needed (it imports Keras); a model
    trained now gets the time it was computed on its card (for the provenance appendix)."""
    from . import models
    model, card = models.get(ctx, name)
    if "computed_at" not in card and (f"model {name}", "computed") in [t[:2] for t in ctx.timings]:
        card["computed_at"] = artifacts.now()
        artifacts.atomic_write_json(models.paths(ctx, name)[1], card)
    return model, card


def make_context(data: str | None, config: str | None, overrides=(), profile: str | None = None,
                 build: str | Path = ROOT / "build", strategy: str = "default") -> Context:
    cfg = read_config(config, overrides, profile)
    top = build = Path(build)
    if cfg.profile != "full":
        build = build / cfg.profile      # a profile never overwrites the full build's artifacts
    root, source = data_choice(data, top)
    listing = list_dataset(root, build)
    remember_dataset(top, root, source, listing.digest())
    make_strategy(strategy)      # validate the name early
    return Context(cfg, listing, build, strategy_name=strategy, model_loader=_load_model)


def remember_dataset(top: Path, root: str, source: str, digest: str) -> None:
    """Say which dataset this build reads (and why), and record it in ``build/dataset.json`` so
    that the next build finds it without ``--data``; a changed dataset at the same path is named
    (its stale stages are rebuilt: the stage keys hash the listing)."""
    last = remembered(top)
    where = str(Path(root).resolve())
    if source == "remembered":
        log(f"dataset {where} (remembered from {top / DATASET_FILE}; --data PATH reads another)")
    else:
        log(f"dataset {where}")
    if last is not None and last.get("path") == where and last.get("digest") != digest:
        log("the dataset's files changed since the last build: stages that read them are rebuilt")
    if last != {"path": where, "digest": digest}:
        artifacts.atomic_write_json(top / DATASET_FILE, {"path": where, "digest": digest})


def list_dataset(root: str, build: Path):
    """The dataset listing, with the files' hashes cached by stat in build/cache/hashes.json
    (a file not touched since the last build is not read again; see xaikit.data.discover)."""
    path = build / "cache" / "hashes.json"
    stored = artifacts.read_json(path)
    where = str(Path(root).resolve())
    cache = stored["files"] if isinstance(stored, dict) and stored.get("root") == where else {}
    before = dict(cache)
    listing = discover(root, hash_cache=cache)
    build.mkdir(parents=True, exist_ok=True)
    if cache != before:
        artifacts.atomic_write_json(path, {"root": where, "files": cache})
    return listing


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


def section_key(ctx: Context, section) -> str:
    from . import models
    return artifacts.digest(section.name, ctx.data_key, ctx.cfg.digest(section.config),
                            artifacts.source_digest(list(section.sources) + [Path(figures.__file__)]),
                            [models.key(ctx, m) for m in models.expand_all(ctx, section.models)],
                            ctx.cfg.profile)


def _save_result(ctx: Context, section, result, key: str, seconds: float) -> None:
    final = ctx.build / "sections" / section.name
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{section.name}."))
    files = {}
    for fid, (fig, caption) in result.figures.items():
        strips = []
        for k, (data, suffix) in enumerate(figures.encode_strips(fig)):
            name = f"{fid}{suffix}" if k == 0 else f"{fid}.{k + 1}{suffix}"
            artifacts.atomic_write_bytes(tmp / name, data)
            strips.append(f"sections/{section.name}/{name}")
        files[fid] = {"file": strips[0], "strips": strips, "caption": caption}
    tables = {fid: {"html": frame.to_html(index=False, float_format=lambda v: f"{v:.3f}",
                                          border=0, classes="data", escape=True),
                    "caption": caption}
              for fid, (frame, caption) in result.tables.items()}
    artifacts.atomic_write_json(tmp / "result.json", {
        "key": key, "seconds": seconds, "computed_at": artifacts.now(),
        "device": device(ctx.strategy_name), "numbers": result.numbers,
        "figures": files, "tables": tables})
    artifacts.atomic_replace_dir(tmp, final)


def load_result(ctx: Context, name: str, key: str | None = None) -> dict | None:
    res = artifacts.read_json(ctx.build / "sections" / name / "result.json")
    if res is None or (key is not None and res.get("key") != key):
        return None
    return res


def forget_models(ctx: Context, force: tuple[str, ...]) -> None:
    """Delete the cached models that ``force`` names (or all, with "all") so they retrain."""
    from . import models
    for m in models.names(ctx):
        kind = m.partition("-")[0]
        if "all" in force or m in force or kind in force or f"model-{m}" in force:
            for p in models.paths(ctx, m):
                p.unlink(missing_ok=True)


def check_cluster(cluster: str | None) -> None:
    """An unreachable --cluster / $XAIKIT_RAY_ADDRESS answers at once, before any work."""
    from .engine import check_reachable, cluster_address
    address = cluster_address(cluster)
    if address:
        check_reachable(address)


def plan(ctx: Context, model_names, section_names) -> Stages:
    """The stale models and sections as the build's stages, each with its recorded cost."""
    from .engine import stale, with_upstream
    stages = ([f"model {m}" for m in with_upstream(ctx, model_names) if stale(ctx, m)] +
              [f"section {n}" for n in section_names])
    return Stages({s: recorded_seconds(ctx.build, s) for s in stages})


def _model(ctx: Context, name: str, progress: Stages) -> None:
    """Train or load a model; a stage of its own when it trains here (the local engine)."""
    stage = f"model {name}"
    here = stage in progress.estimates and stage not in progress.batch and stage not in progress.done
    if here:
        progress.start(stage)
    t0 = time.perf_counter()
    ctx.model(name)
    if here:
        progress.finish(stage, time.perf_counter() - t0)


def run_sections(ctx: Context, force: tuple[str, ...] = (), until: str | None = None,
                 retire: bool = False, engine=None) -> tuple[dict, dict]:
    """Run every stale section in registry order (up to and including ``until``); return
    (name -> stored result, name -> key). With ``retire``, the previous report is deleted
    when the first stage must be recomputed (its numbers are about to change). The models the
    stale sections need are handed to ``engine`` (report.engine) at once, before any section
    runs, so that they train side by side."""
    from . import models
    from .registry import SECTIONS
    keys: dict[str, str] = {}
    results: dict[str, dict] = {}
    force_all = "all" in force
    forget_models(ctx, force)
    names = [s.name for s in SECTIONS]
    last = names.index(until) + 1 if until else len(names)
    for section in SECTIONS[:last]:     # every key from the sources as they are now, before any stage
        keys[section.name] = section_key(ctx, section)   # runs: an edit during the build stales them
    stored = {s.name: None if (force_all or s.name in force) else load_result(ctx, s.name, keys[s.name])
              for s in SECTIONS[:last]}
    stale = [s for s in SECTIONS[:last] if stored[s.name] is None]
    needed = list(dict.fromkeys(m for s in stale for m in models.expand_all(ctx, s.models)))
    progress = plan(ctx, needed, [s.name for s in stale])
    if stale and retire:
        retire_report(ctx.build)
    if engine is not None and needed:
        engine.submit(ctx, needed, progress)
    for section in SECTIONS[:last]:
        key = keys[section.name]
        if stored[section.name] is not None:
            ctx.timings.append((section.name, "reused", 0.0))
            results[section.name] = stored[section.name]
            continue
        progress.waits(f"section {section.name}", [f"model {m}" for m in models.expand_all(ctx, section.models)])
        for m in models.expand_all(ctx, section.models):
            _model(ctx, m, progress)      # train/load models first: their time is their own
        progress.start(f"section {section.name}")
        t0 = time.perf_counter()
        result = section.run(ctx)
        seconds = time.perf_counter() - t0
        _save_result(ctx, section, result, key, seconds)
        ctx.timings.append((section.name, "computed", seconds))
        progress.finish(f"section {section.name}", seconds)
        results[section.name] = load_result(ctx, section.name, key)
    _prune_maps(ctx, [s for s in SECTIONS[:last] if stored[s.name] is None], SECTIONS)
    return results, keys


def _prune_maps(ctx: Context, ran, sections) -> None:
    """Once every section that asks the map store ran in this build, the stored map sets it did not
    ask for are stale (another model, setting or code): delete them, so build/cache/maps stays one
    build's worth."""
    from . import maps
    users = [s for s in sections if Path(maps.__file__) in map(Path, s.sources)]
    if users and {s.name for s in users} <= {s.name for s in ran}:
        maps.prune(ctx)


def manifest_sources(ctx: Context | None = None) -> list[Path]:
    """Every source file a stage key reads (sections', models', the data's, the user's model
    builder or model file) and the code that declares the stages and computes the keys."""
    from . import architecture, models, registry, section
    from .registry import SECTIONS
    paths = set(DATA_SOURCES) | set(models.SOURCES)
    paths |= {Path(registry.__file__), Path(section.__file__), Path(__file__),
              Path(artifacts.__file__), ROOT / "xaikit" / "config.py"}
    for s in SECTIONS:
        paths |= {Path(p) for p in s.sources}
        paths.add(Path(sys.modules[s.run.__module__].__file__))
    paths.add(Path(architecture.__file__))
    if ctx is not None:
        paths |= set(architecture.sources(ctx))
    return sorted(p.resolve() for p in paths)


def _shown(p: Path) -> str:
    """A source's name in stages.json: relative to the project, absolute outside it."""
    return p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else str(p)


def fingerprint(ctx: Context, sources: list[Path]) -> str:
    return artifacts.digest(ctx.listing.digest(), ctx.cfg.digest(), ctx.cfg.profile,
                            [_shown(p) for p in sources],
                            artifacts.source_digest(sources))


def write_manifest(ctx: Context, keys: dict, outline: list, model_names, fingerprint_at_start: str) -> None:
    """Record the build; ``fingerprint_at_start`` is the sources' fingerprint taken before any stage ran,
    so a source edited while the build ran makes the next build recompute instead of trusting it."""
    sources = manifest_sources(ctx)
    artifacts.atomic_write_json(ctx.build / MANIFEST, {
        "fingerprint": fingerprint_at_start, "keys": keys, "layout": outline,
        "models": list(model_names), "sources": [_shown(p) for p in sources]})


def fresh_results(ctx: Context) -> tuple[dict, list, list] | None:
    """(results, outline, model names) of the last complete build when nothing its stage keys
    are made of has changed since; else None. Imports no TensorFlow."""
    m = artifacts.read_json(ctx.build / MANIFEST)
    if not isinstance(m, dict) or not {"fingerprint", "keys", "layout", "sources"} <= set(m):
        return None
    try:
        if fingerprint(ctx, [ROOT / p for p in m["sources"]]) != m["fingerprint"]:
            return None
    except OSError:                       # a source file was removed or renamed
        return None
    results = {name: load_result(ctx, name, key) for name, key in m["keys"].items()}
    if any(r is None for r in results.values()):
        return None
    return results, m["layout"], m.get("models", [])


def build_report(data: str | None = None, config: str | None = None, overrides=(),
                 profile: str | None = None, force: tuple[str, ...] = (),
                 build: str | Path = ROOT / "build", pdf: bool = True,
                 templates: str | Path = ROOT / "templates", strategy: str = "default",
                 cluster: str | None = None, verbose: bool = False) -> Path:
    """The whole job: returns the path of the HTML report (the PDF lies beside it). Stale models
    train on Ray (an embedded local instance, or ``cluster``; see report.engine)."""
    t0 = time.perf_counter()
    check_cluster(cluster)
    ctx = make_context(data, config, overrides, profile, build, strategy)
    from .render import pdf_renderer
    with pdf_renderer(pdf) as renderer:    # forked now, before TensorFlow is imported (see render.pdf_renderer)
        return _build(ctx, force, pdf, Path(templates), cluster, verbose, renderer, t0)


def _build(ctx: Context, force, pdf: bool, templates: Path, cluster, verbose: bool, renderer,
           t0: float) -> Path:
    fresh = None if force else fresh_results(ctx)
    if fresh is not None:
        results, outline, model_names = fresh
        log("every stage is up to date (stages.json): rendering only")
        ctx.timings.extend((name, "reused", 0.0) for name in results)
    else:
        from .engine import running
        with running(ctx, _load_model, cluster, verbose) as engine:
            if not any((ctx.build / "models").glob("*.json")):   # a cold build: every model will train
                engine.warm(ctx)       # its workers import TensorFlow while this process does
            from . import architecture, models
            from .render import layout
            architecture.check(ctx)           # the model's contract, before anything is trained
            check_splits(ctx)
            at_start = fingerprint(ctx, manifest_sources(ctx))
            results, keys = run_sections(ctx, force, retire=True, engine=engine)
        outline, model_names = layout(), models.names(ctx)
        write_manifest(ctx, keys, outline, model_names, at_start)
    from .explorer import build_step
    build_step(ctx, results)                  # before rendering: the report links to it (reused when fresh)
    from .render import render
    t1 = time.perf_counter()
    html_path = render(ctx, results, pdf=pdf, templates=templates, outline=outline,
                       model_names=model_names, renderer=renderer)
    ctx.timings.append(("render", "computed", time.perf_counter() - t1))
    summary = "; ".join(f"{name} {how} {sec:.1f}s" for name, how, sec in ctx.timings)
    log(f"stages: {summary}")
    log(f"done in {time.perf_counter() - t0:.1f} s: {html_path} and {html_path.with_suffix('.pdf')}")
    return html_path


def run_stage(stage: str, data: str | None = None, config: str | None = None, overrides=(),
              profile: str | None = None, force: tuple[str, ...] = (),
              build: str | Path = ROOT / "build", strategy: str = "default",
              cluster: str | None = None, verbose: bool = False) -> None:
    """Bring one model or section (and what it needs) up to date without rendering."""
    check_cluster(cluster)                # before Keras is imported: an unreachable address answers at once
    from . import models
    from .engine import running
    from .registry import SECTIONS
    ctx = make_context(data, config, overrides, profile, build, strategy)
    if stage != "q1":
        from . import architecture
        architecture.check(ctx)
        check_splits(ctx)
    if stage in models.names(ctx) or stage in models.KINDS:
        forget_models(ctx, force)
        wanted = models.expand(ctx, stage)
        with running(ctx, _load_model, cluster, verbose) as engine:
            progress = plan(ctx, wanted, ())
            engine.submit(ctx, wanted, progress)
            for name in wanted:
                _model(ctx, name, progress)
                log(f"model {name}: {models.card_summary(ctx.model(name)[1])}")
        return
    names = [s.name for s in SECTIONS]
    if stage not in names:
        from xaikit.errors import XaikitError
        raise XaikitError(f"unknown stage {stage!r}; expected one of {list(models.KINDS + models.names(ctx)) + names}")
    with running(ctx, _load_model, cluster, verbose) as engine:
        run_sections(ctx, force, until=stage, engine=engine)


def clean(build: str | Path = ROOT / "build") -> None:
    shutil.rmtree(build, ignore_errors=True)
