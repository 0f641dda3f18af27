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


@pytest.mark.parametrize("main, learned, diff, word", [
    ((0.3, 0.2, 0.45), (0.7, 0.6, 0.8), (-0.4, -0.5, -0.3), "no_template"),   # below the cut: no template at all
    ((0.55, 0.45, 0.65), (0.7, 0.6, 0.8), (0.0, -0.1, 0.1), "cannot_tell"),   # the interval contains the cut
    ((0.45, 0.4, 0.5), (0.7, 0.6, 0.8), (0.0, -0.1, 0.1), "cannot_tell"),     # ... reaches it: not wholly below
    ((0.7, 0.5, 0.8), (0.7, 0.5, 0.8), (0.0, 0.0, 0.1), "method"),            # both at the cut, main not above
    ((0.8, 0.7, 0.9), (0.4, 0.3, 0.5), (0.4, 0.01, 0.5), "classifier"),       # main clearly above the reference
    ((0.8, 0.7, 0.9), (0.6, 0.45, 0.7), (0.2, -0.05, 0.3), "unclear"),        # the reference straddles the cut
    ((0.8, 0.7, 0.9), (np.nan,) * 3, (np.nan,) * 3, "cannot_tell"),          # no model that learned nothing
])
def test_a_class_template_is_the_methods_only_when_models_that_learned_nothing_reach_it(main, learned, diff, word):
    # catches (#32, item 3, Q5.4): a template called the classifier's although random-label models show it as
    # strongly; the cut applied as > instead of >= (rows 3: lo == cut); main - reference read with >= 0 (row 3);
    # a missing reference taken as "method"
    from xaikit.sanity import Interval, template_verdict
    assert template_verdict(Interval(*main), Interval(*learned), Interval(*diff), 0.5) == word


def test_a_template_cut_outside_the_similarity_range_is_refused():
    from xaikit.sanity import Interval, template_verdict
    iv = Interval(0.5, 0.4, 0.6)
    for cut in (0.0, 1.5):
        with pytest.raises(ValueError, match="cut expects"):
            template_verdict(iv, iv, iv, cut)


def test_verdicts_can_be_asked_for_one_metric():
    # catches: the own-target sensitivity analysis (Q5.2) silently computing every metric, or none
    maps = _maps(np.random.default_rng(1))
    designs = {"subset": {"true": ["control-1", "control-2", "control-3"], "random": ["random-1", "random-3"]}}
    y = np.arange(16) % 2
    out = verdicts(maps, designs, y, y, cut=0.5, alpha=0.05, n_boot=100, seed=0, effect=0.1, methods=(("ig", "IG"),),
                   metrics=("ssim",))
    assert list(out) == [("ig", "ssim", "subset")]


def test_the_whole_split_design_compares_its_random_label_model_with_two_controls_of_its_recipe(tmp_path):
    # catches (#32, item 1): the whole-split ceiling pairing the main model (another recipe) with control-all
    from report.build import make_context
    from report.q5_sanity import design_models
    from tests.conftest import make_dataset
    root = make_dataset(tmp_path / "d", per_class={"train": 6, "test": 2})
    ctx = make_context(str(root), None, ["data.image_size=32"], None, tmp_path / "build")
    assert design_models(ctx)["whole"] == {"true": ["control-all", "control-all-2"], "random": ["random-all"]}
    off = make_context(str(root), None, ["data.image_size=32", "random_labels.whole_split=false"], None, tmp_path / "b")
    assert "whole" not in design_models(off)
