"""Q5's frame (issue #32): the floor matched in arm, the effect-size gate and the random-label models
counted on validation (report.q5_sanity.verdicts, as_intended)."""

import numpy as np
import pytest

from report.preflight import read_config
from report.q5_sanity import as_intended, verdicts


def _maps(rng, n=16, size=12):
    template = rng.normal(size=(size, size))
    images = rng.normal(size=(n, size, size))
    true = {m: template + images + 0.5 * rng.normal(size=images.shape) for m in ("control-1", "control-2", "control-3")}
    random = {"random-1": np.broadcast_to(template, images.shape) + 0.5 * rng.normal(size=images.shape),
              "random-2": template + images + 0.5 * rng.normal(size=images.shape),     # learned the images anyway
              "random-3": np.broadcast_to(template, images.shape) + 0.5 * rng.normal(size=images.shape)}
    return {"ig": {**true, **random}}


def test_only_the_models_counted_on_validation_enter_the_primary_analysis():
    # catches: a random-label model the validation rule left out still counted (#32: which models count was read
    # from the test AUC, after the fact), or the frame's floor not the cross's own models (rho far outside [0, 1])
    maps = _maps(np.random.default_rng(0))
    designs = {"subset": {"true": ["control-1", "control-2", "control-3"], "random": ["random-1", "random-2", "random-3"]}}
    y = np.arange(16) % 2
    kw = dict(cut=0.5, alpha=0.05, n_boot=300, seed=0, effect=0.1, methods=(("ig", "IG"),))
    counted = verdicts(maps, designs, y, y, counted={"random-1", "random-3"}, **kw)
    every = verdicts(maps, designs, y, y, **kw)
    r, r_all = counted[("ig", "spearman_abs", "subset")][0], every[("ig", "spearman_abs", "subset")][0]
    assert r.outcome == "pass" and -0.15 < r.rho.mean < 0.15
    assert r_all.rho.mean > r.rho.mean + 0.1                           # random-2 pulls the cross up
    assert 0 <= r_all.rho.mean <= 1
    none = verdicts(maps, designs, y, y, counted=set(), **kw)[("ig", "spearman_abs", "subset")][0]
    assert none.outcome == "uninformative"                             # no random-label model left to compare


def test_as_intended_reads_the_validation_auc():
    # catches: the band applied to another number than the one passed, or memorisation not required
    cfg = read_config(None, [], None)
    assert as_intended("random", 0.99, 0.52, cfg)
    assert not as_intended("random", 0.99, 0.75, cfg)                   # off chance on validation
    assert not as_intended("random", 0.40, 0.50, cfg)                   # did not memorise
    assert not as_intended("random", 0.99, float("nan"), cfg)           # no validation AUC: not counted
    assert as_intended("control", cfg["verdicts.control_fit"], 0.9, cfg)
