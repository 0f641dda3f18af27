"""invoke tasks: thin wrappers that parse options and call one function in report/."""

import json
import os
import shlex
import sys

from invoke import task

HELP = {
    "data": "dataset folder in the Kaggle layout (default: $XAIKIT_DATA, else data/chest_xray)",
    "config": "TOML config file (default: xaikit.toml)",
    "set_": "override a config value, e.g. --set train.epochs=10 (repeatable)",
    "quick": "quick profile: fewer images and epochs, marked on the report's title page",
    "force": "recompute a stage even if fresh: main, random, control, q1..q5 or all (repeatable)",
    "no_pdf": "write only the HTML",
    "build": "output folder (default: build/ in this project)",
    "verbose": "also show TensorFlow's start-up log lines and library warnings",
    "strategy": "training placement: default (TensorFlow picks a GPU if any), mirrored (all GPUs, "
                "tf.distribute.MirroredStrategy) or one-device",
    "cluster": "train the models on this Ray cluster, HOST:PORT of its head (default: $XAIKIT_RAY_ADDRESS, "
               "else a local Ray instance started for the build)",
}


def _help(*names, **extra):
    return dict({n: HELP[n] for n in names}, **extra)


COMMON = ("data", "config", "set_", "quick", "force", "build", "verbose")


def _build(folder):
    return {"build": folder} if folder else {}


def _call(fn, *args, **kwargs):
    from report.cli import friendly
    return friendly(fn)(*args, **kwargs)


def _start(data, config, set_, quick, verbose, build=None):
    """Check the inputs before TensorFlow is imported (a typo answers at once), quietly."""
    from report.cli import quiet
    from report.preflight import check_inputs
    quiet(verbose)
    _call(check_inputs, data=data, config=config, overrides=tuple(set_ or ()),
          profile="quick" if quick else None, **_build(build))


@task(default=True, help=_help(*COMMON, "no_pdf", "strategy", "cluster",
                                model="explain a .keras model trained elsewhere instead of training the "
                                      "main model (same as --set model.path=PATH)"),
      iterable=["set_", "force"])
def build_report(c, data=None, config=None, set_=None, quick=False, force=None, no_pdf=False,
                 strategy="default", build=None, verbose=False, model=None, cluster=None):
    """Build build/report.html and build/report.pdf, recomputing only what is stale."""
    set_ = list(set_ or ()) + ([f"model.path={json.dumps(os.path.abspath(model))}"] if model else [])
    _start(data, config, set_, quick, verbose, build)
    from report.build import build_report as run
    _call(run, data=data, config=config, overrides=tuple(set_ or ()),
          profile="quick" if quick else None, force=tuple(force or ()), pdf=not no_pdf,
          strategy=strategy, cluster=cluster, verbose=verbose, **_build(build))


@task(help=_help(*COMMON), iterable=["set_", "force"])
def eda(c, data=None, config=None, set_=None, quick=False, force=None, build=None, verbose=False):
    """Compute the Q1 data analysis (cached under build/sections/q1)."""
    _start(data, config, set_, quick, verbose, build)
    from report.build import run_stage
    _call(run_stage, "q1", data=data, config=config, overrides=tuple(set_ or ()),
          profile="quick" if quick else None, force=tuple(force or ()), **_build(build))


@task(help=_help(*COMMON, "strategy", "cluster", model="main, random, control (every seed of that arm) or one "
                                            "model such as random-2 (default main)"),
      iterable=["set_", "force"])
def train(c, model="main", data=None, config=None, set_=None, quick=False, force=None,
          strategy="default", build=None, verbose=False, cluster=None):
    """Train a model if its cached copy is missing or stale (--force MODEL to retrain)."""
    _start(data, config, set_, quick, verbose, build)
    from report.build import run_stage
    _call(run_stage, model, data=data, config=config, overrides=tuple(set_ or ()),
          profile="quick" if quick else None, force=tuple(force or ()), strategy=strategy,
          cluster=cluster, verbose=verbose, **_build(build))


@task(help={"k": "only tests matching this expression", "fast": "skip the end-to-end build"})
def test(c, k=None, fast=False):
    """Run the test suite (pytest)."""
    args = [sys.executable, "-m", "pytest", "-q"]
    if k:
        args += ["-k", k]
    if fast:
        args += ["-m", "not e2e"]
    c.run(shlex.join(args), pty=False, echo=True)     # quoted: "-m 'not e2e'" is one argument


@task(help={"build": HELP["build"]})
def clean(c, build=None):
    """Remove build/ (generated files only)."""
    from report.build import clean as run
    run(**_build(build))
