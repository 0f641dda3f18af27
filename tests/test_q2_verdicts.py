"""Q2's computed verdicts: the performance target by the interval, the direction a sharpness
shift predicts, and the patient groups of the clustered bootstrap (issue 19)."""

import numpy as np

from report.q2_model import groups, performance_target, sharpness_direction, target_verdict
from xaikit.config import load_config

from .conftest import study_toml

TARGET = performance_target(load_config(study_toml()))


def _ci(lo, hi):
    return {"value": (lo + hi) / 2, "lo": lo, "hi": hi}


def test_the_target_is_judged_by_the_interval_not_the_point():
    """Catches: a target "met" by a point estimate whose interval reaches below the floor."""
    met = {m: _ci(t + 0.01, t + 0.05) for m, t in TARGET.items()}
    assert target_verdict(met, TARGET)["verdict"] == "met"
    straddle = dict(met, auc=_ci(TARGET["auc"] - 0.02, TARGET["auc"] + 0.04))   # point above the floor
    v = target_verdict(straddle, TARGET)
    assert v["verdict"] == "cannot tell" and v["per_metric"]["auc"] == "cannot tell" and not v["met"]
    below = dict(straddle, specificity=_ci(0.5, TARGET["specificity"] - 0.01))
    assert target_verdict(below, TARGET)["verdict"] == "missed"


def test_sharper_test_normal_images_predict_fewer_false_positives():
    """The sentence of issue 24 (Q2.2): when the model reads sharp as NORMAL, sharper test NORMAL
    images predict *fewer* false positives. Catches: the direction reversed, or a direction
    claimed while the blur check's interval contains 0."""
    train = {"NORMAL": 250.0, "PNEUMONIA": 150.0}
    sharper = sharpness_direction(train, {"NORMAL": 300.0, "PNEUMONIA": 140.0}, _ci(0.01, 0.05))
    assert sharper["NORMAL"]["predicts"] == "NORMAL" and not sharper["predicts_more_fp"]
    assert sharper["PNEUMONIA"]["predicts"] == "PNEUMONIA" and not sharper["predicts_more_fn"]
    blurrier = sharpness_direction(train, {"NORMAL": 200.0, "PNEUMONIA": 170.0}, _ci(0.01, 0.05))
    assert blurrier["predicts_more_fp"] and blurrier["predicts_more_fn"]
    reversed_model = sharpness_direction(train, {"NORMAL": 200.0, "PNEUMONIA": 170.0}, _ci(-0.05, -0.01))
    assert not reversed_model["predicts_more_fp"] and not reversed_model["predicts_more_fn"]
    unknown = sharpness_direction(train, {"NORMAL": 200.0, "PNEUMONIA": 170.0}, _ci(-0.01, 0.05))
    assert not unknown["direction_known"] and not unknown["predicts_more_fp"] and unknown["NORMAL"]["predicts"] is None
    assert sharper["sharper_class"] == "NORMAL"


def test_patient_groups_are_per_class_and_ignore_the_folder():
    """Catches: one group for person1 of both classes (a cluster with both labels), or the folder
    kept in the id (every image its own patient)."""
    names = np.array(["test/PNEUMONIA/person1_virus_2.jpeg", "test/PNEUMONIA/person1_bacteria_5.jpeg",
                      "test/NORMAL/person1_virus_9.jpeg", "test/NORMAL/IM-0001-0001.jpeg"])
    g = groups(np.array([1, 1, 0, 0]), names)
    assert g.tolist() == ["1:person1", "1:person1", "0:person1", "0:IM-0001"]


def test_sharpness_direction_unknown_without_an_interval():
    # catches: a NaN interval (fewer than two validation NORMAL images) read as a direction
    from report.q2_model import sharpness_direction
    nan = float("nan")
    out = sharpness_direction({"NORMAL": 2.0, "PNEUMONIA": 1.0}, {"NORMAL": 1.0, "PNEUMONIA": 2.0},
                              {"value": 0.1, "lo": nan, "hi": nan})
    assert out["model_reads"] == "cannot tell" and not out["predicts_more_fp"] and not out["predicts_more_fn"]
