"""ROAD's noisy linear imputation, deletion/insertion with an imputer, the saturation gate and
the Holm family of Q4.4."""

import numpy as np
import pytest

from xaikit.faithfulness import deletion_insertion, road_imputer, sign_flip_p
from xaikit.road import NEIGHBOUR_WEIGHTS, noisy_linear_impute



def _ramp(h=12, w=10, c=1):
    r, q = np.mgrid[:h, :w]
    return np.repeat((0.2 + 0.03 * r + 0.05 * q)[None, ..., None], c, axis=-1)


def _block(h=12, w=10):
    m = np.zeros((1, h, w), bool)
    m[0, 3:8, 2:7] = True
    return m


def test_weights_follow_the_reference():
    # catches: corner and edge weights swapped or not summing to 1 (road/imputations.py)
    w = dict(NEIGHBOUR_WEIGHTS)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w[(0, 1)] == w[(1, 0)] == w[(0, -1)] == w[(-1, 0)] == pytest.approx(1 / 6)
    assert w[(1, 1)] == w[(-1, -1)] == w[(1, -1)] == w[(-1, 1)] == pytest.approx(1 / 12)


@pytest.mark.parametrize("rtol", [0.0, 1e-10])
def test_linear_ramp_is_reproduced_without_noise(rtol):
    # a linear function is its own neighbour mean: catches a wrong sign of the boundary term,
    # an off-by-one neighbour index, or weights that do not renormalise
    x = _ramp(c=2)
    out = noisy_linear_impute(x, _block(), seed=0, noise=0.0, rtol=rtol)
    np.testing.assert_allclose(out, x, atol=1e-8)


def test_block_at_the_image_edge_renormalises_the_weights():
    # removed pixels on the top edge of a ramp along that edge: the neighbours outside the image
    # drop out and the rest are renormalised (the reference's sum_neighbors), so the ramp is
    # reproduced; without renormalisation the values would shrink towards 0
    q = np.arange(10)
    x = np.broadcast_to((0.2 + 0.05 * q)[None, None, :, None], (1, 12, 10, 1)).copy()
    m = np.zeros((1, 12, 10), bool)
    m[0, 0:4, 2:7] = True
    np.testing.assert_allclose(noisy_linear_impute(x, m, seed=0, noise=0.0), x, atol=1e-8)


def test_kept_pixels_never_change_and_noise_has_its_std():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(3, 16, 16, 1)).astype(np.float32)
    m = rng.uniform(size=(3, 16, 16)) < 0.5
    out = noisy_linear_impute(x, m, seed=3, noise=0.05)
    np.testing.assert_array_equal(out[~m], x[~m])                  # bit for bit
    quiet = noisy_linear_impute(x, m, seed=3, noise=0.0)
    assert np.std(out[m] - quiet[m]) == pytest.approx(0.05, rel=0.15)   # noise only on removed pixels


def test_seed_reproducibility():
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(2, 10, 10, 1))
    m = rng.uniform(size=(2, 10, 10)) < 0.4
    a = noisy_linear_impute(x, m, seed=7)
    np.testing.assert_array_equal(a, noisy_linear_impute(x, m, seed=7))
    assert not np.array_equal(a, noisy_linear_impute(x, m, seed=8))


def test_constant_image_stays_constant():
    x = np.full((1, 9, 9, 1), 0.37)
    m = np.zeros((1, 9, 9), bool)
    m[0, 1:8, 1:8] = True
    np.testing.assert_allclose(noisy_linear_impute(x, m, seed=0, noise=0.0), x, atol=1e-12)


def test_imputed_pixel_is_the_weighted_mean_of_kept_neighbours():
    # one removed pixel: exactly sum_k w_k x_k over its eight neighbours
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(1, 5, 5, 1))
    m = np.zeros((1, 5, 5), bool)
    m[0, 2, 2] = True
    expected = sum(w * x[0, 2 + dr, 2 + dc, 0] for (dr, dc), w in NEIGHBOUR_WEIGHTS)
    assert noisy_linear_impute(x, m, seed=0, noise=0.0)[0, 2, 2, 0] == pytest.approx(expected)


def test_fully_removed_image_takes_the_fallback():
    # no kept pixel: the system is singular; the documented fallback is used
    x = np.random.default_rng(5).uniform(size=(1, 6, 6, 1))
    fb = np.full((6, 6, 1), 0.25)
    out = noisy_linear_impute(x, np.ones((1, 6, 6), bool), seed=0, noise=0.0, fallback=fb)
    np.testing.assert_allclose(out[0], fb)


def test_bad_masks_raise():
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="boolean"):
        noisy_linear_impute(x, np.zeros((1, 4, 4)), seed=0)
    with pytest.raises(ValueError, match="either fill and start, or impute"):
        deletion_insertion(_mean_model(), x, np.zeros((1, 4, 4)), 1, fill=0.0, start=0.0,
                           impute=road_imputer(0.0))


def _mean_model():
    import keras
    inp = keras.Input((8, 8, 1))
    s = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Concatenate()([1 - s, s])
    return keras.Model(inp, out)


def test_road_curves_at_fraction_0_and_1():
    # deletion starts at the image and ends at the fallback; insertion the reverse (noise 0)
    rng = np.random.default_rng(6)
    x = rng.uniform(0.3, 0.9, size=(2, 8, 8, 1)).astype(np.float32)
    fb = np.full((8, 8, 1), 0.1, np.float32)
    model = _mean_model()
    c = deletion_insertion(model, x, rng.uniform(size=(2, 8, 8)), 1, impute=road_imputer(fb, noise=0.0),
                           steps=4, cells=2)
    p_x = x.reshape(2, -1).mean(1)
    np.testing.assert_allclose(c.deletion[:, 0], p_x, atol=1e-6)
    np.testing.assert_allclose(c.deletion[:, -1], 0.1, atol=1e-6)
    np.testing.assert_allclose(c.insertion[:, 0], 0.1, atol=1e-6)
    np.testing.assert_allclose(c.insertion[:, -1], p_x, atol=1e-6)


def test_road_insertion_keeps_the_top_units_and_imputes_the_rest():
    # a map ranking the left half first: insertion at 1/2 keeps the left half as it is and
    # imputes the right half from it (a ramp in the columns is reproduced exactly)
    x = _ramp(8, 8)[..., :1].astype(np.float32)
    left_first = np.tile(np.arange(8)[::-1].astype(float), (8, 1))[None]
    seen = []

    def spy(images, removed, seed):
        seen.append(removed.copy())
        return road_imputer(0.0, noise=0.0)(images, removed, seed)

    deletion_insertion(_mean_model(), x, left_first, 1, impute=spy, steps=2, cells=2)
    removed = seen[0]                                   # 3 deletion then 3 insertion masks
    assert removed[1][:, :4].all() and not removed[1][:, 4:].any()     # deletion at 1/2: left gone
    assert removed[4][:, 4:].all() and not removed[4][:, :4].any()     # insertion at 1/2: right gone


def test_sign_flip_p():
    # catches: a one-sided p, or a p that can be 0
    rng = np.random.default_rng(0)
    assert sign_flip_p(rng.normal(1.0, 0.1, 30), n_perm=999, seed=0) == pytest.approx(1 / 1000)
    assert sign_flip_p(-rng.normal(1.0, 0.1, 30), n_perm=999, seed=0) == pytest.approx(1 / 1000)
    assert sign_flip_p(rng.normal(0, 1, 30), n_perm=999, seed=0) > 0.05
    assert sign_flip_p(np.ones(4), n_perm=999) == pytest.approx(2 / 16)   # exact: 2 of 16 flips


# ---- report side: the gate, Holm over the family, the counts -------------------------------

SPAN = 0.1   # verdicts.saturation_span in these tests


def _settings(span: float = SPAN):
    return {"n_boot": 500, "seed": 0, "level": 0.95, "alpha": 0.05, "saturation_span": span}


def test_saturation_gate_cases():
    from report.q4_gradcam import saturation_gate
    rng = np.random.default_rng(0)
    p = rng.uniform(0.6, 0.9, 30)
    assert saturation_gate(p, p - 0.5, _settings())["informative"]           # wide span
    assert not saturation_gate(p, p - SPAN / 2, _settings())["informative"]   # too narrow
    # the gate reads verdicts.saturation_span: a span of 0.3 passes at 0.1, fails at 0.4
    assert saturation_gate(p, p - 0.3, _settings(0.1))["informative"]
    assert not saturation_gate(p, p - 0.3, _settings(0.4))["informative"]
    assert not saturation_gate(p, p + 0.5, _settings())["informative"]       # wrong direction
    noisy = saturation_gate(p, p - rng.normal(0, 1, 30), _settings())        # interval spans 0
    assert not noisy["informative"] and noisy["span"]["lo"] < 0 < noisy["span"]["hi"]


def _cell(p, value, informative=True, curve="deletion"):
    return {"curve": curve, "informative": informative,
            "IG - Grad-CAM": {"p": p, "value": value, "lo": value - 0.1, "hi": value + 0.1}}


def test_holm_applies_to_the_family():
    # raw p 0.02 and 0.03 both pass alpha alone; Holm over three (0.02 x 3, 0.03 x 2) passes
    # none, so counting raw p-values would report two wins
    from report.q4_gradcam import holm_family, winner_counts
    cells = [_cell(0.02, -0.2), _cell(0.03, -0.1), _cell(0.5, 0.0), _cell(0.001, -0.3, informative=False)]
    holm_family(cells, 0.05)
    assert [c["IG - Grad-CAM"]["winner_holm"] for c in cells] == [None] * 4
    assert cells[0]["IG - Grad-CAM"]["p_holm"] == pytest.approx(0.06)
    assert cells[3]["IG - Grad-CAM"]["p_holm"] is None                  # uninformative: outside the family
    assert winner_counts(cells).items() >= {"ig": 0, "gradcam": 0, "neither": 3, "total": 3, "uninformative": 1,
                                            "verdict": "neither", "some_left_out": True}.items()


def test_winner_direction_and_counts():
    # deletion: lower is better, so IG - Grad-CAM < 0 is an IG win; insertion: higher is better
    from report.q4_gradcam import holm_family, winner_counts
    cells = [_cell(0.001, -0.2), _cell(0.001, -0.2, curve="insertion"), _cell(0.9, 0.1),
             _cell(0.001, 0.5, informative=False)]
    holm_family(cells, 0.05)
    assert [c["IG - Grad-CAM"]["winner_holm"] for c in cells] == ["IG", "Grad-CAM", None, None]
    assert winner_counts(cells).items() >= {"ig": 1, "gradcam": 1, "neither": 1, "total": 3, "uninformative": 1,
                                            "verdict": "mixed"}.items()
    assert winner_counts(cells)["says"] == {"IG": False, "Grad-CAM": False, "mixed": True, "no majority": False,
                                            "neither": False, "uninformative": False}
    assert winner_counts([_cell(0.001, 0.5, informative=False)])["verdict"] == "uninformative"


def test_the_winner_needs_a_majority_of_the_informative_comparisons():
    # catches: a winner named on one win and no loss (#32: Q4.4 said "IG under every fill" on 2 wins of 6), a
    # majority counted over all cells (uninformative ones included), or ties counted as wins
    from report.q4_gradcam import holm_family, winner_counts
    one = [_cell(0.001, -0.3), _cell(0.9, 0.0), _cell(0.9, 0.0)]
    holm_family(one, 0.05)
    got = winner_counts(one)
    assert (got["ig"], got["gradcam"], got["verdict"]) == (1, 0, "no majority")
    assert got["claim"] == "IG ranks the image's parts more faithfully in some comparisons but not in most"
    most = [_cell(0.001, -0.3), _cell(0.001, -0.3), _cell(0.9, 0.0)] + [_cell(0.001, 0.5, informative=False)] * 3
    holm_family(most, 0.05)
    assert winner_counts(most)["verdict"] == "IG" and winner_counts(most)["Claim"].startswith("IG ranks")
    half = [_cell(0.001, 0.3, curve="insertion"), _cell(0.9, 0.0)]
    holm_family(half, 0.05)
    assert winner_counts(half)["verdict"] == "no majority"        # one of two is not a majority


def test_the_pooled_claim_needs_every_fill_to_name_the_same_winner():
    # catches: a pooled majority claimed while one fill names IG and another Grad-CAM
    from report.q4_gradcam import FAITH_DEPENDS, holm_family, pooled_summary, winner_counts
    ig_fill = [_cell(0.001, -0.3), _cell(0.001, -0.3), _cell(0.001, -0.3)]
    cam_fill = [_cell(0.001, 0.3)]
    holm_family(ig_fill + cam_fill, 0.05)
    fills = [{"summary": winner_counts(ig_fill)}, {"summary": winner_counts(cam_fill)}]
    pooled = pooled_summary(ig_fill + cam_fill, fills)
    assert winner_counts(ig_fill + cam_fill)["verdict"] == "IG"            # 3 of 4 pooled
    assert pooled["claim"] == FAITH_DEPENDS and not any(pooled["says"].values())
    agree = pooled_summary(ig_fill, [{"summary": winner_counts(ig_fill)}] * 2)
    assert agree["says"]["IG"] and agree["claim"].startswith("IG ranks")


# ---- the fill that keeps fine detail and the ranking resolution (#32 item 6) ---------------


def test_same_class_donors_are_seeded_and_of_the_wanted_class():
    # catches: a donor drawn from the whole pool (`rng.choice(len(labels))`, any class), or an unseeded draw
    from xaikit.faithfulness import same_class_donors
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1])
    wanted = np.array([1, 0, 1, 1, 0, 0, 1])
    got = same_class_donors(labels, wanted, seed=3)
    assert (labels[got] == wanted).all()
    np.testing.assert_array_equal(got, same_class_donors(labels, wanted, seed=3))
    assert any(not np.array_equal(got, same_class_donors(labels, wanted, seed=s)) for s in range(4, 10))
    with pytest.raises(ValueError, match="class 2"):
        same_class_donors(labels, np.array([2]), seed=3)


def test_deleted_cells_take_the_other_images_pixels():
    # catches: the per-image fill broadcast from the first donor (`fill[0]` for every image), or deletion
    # and insertion swapping fill and start: at deletion 1/2 the top-ranked left half is the donor's and
    # the right half the image's; insertion at 1/2 is the reverse
    from xaikit.faithfulness import same_class_donors
    rng = np.random.default_rng(2)
    x = rng.uniform(0.4, 0.6, size=(2, 8, 8, 1)).astype(np.float32)
    pool = rng.uniform(0.0, 1.0, size=(5, 8, 8, 1)).astype(np.float32)
    donors = pool[same_class_donors(np.array([0, 1, 0, 1, 1]), np.array([1, 0]), seed=0)]
    left_first = np.tile(np.tile(np.arange(8)[::-1].astype(float), (8, 1))[None], (2, 1, 1))
    seen = []

    class Spy:   # a model that keeps what it is shown and scores the mean
        def predict_on_batch(self, batch):
            seen.append(np.array(batch))
            s = batch.reshape(len(batch), -1).mean(1)
            return np.stack([1 - s, s], 1)

    deletion_insertion(Spy(), x, left_first, 1, fill=donors, start=donors, steps=2, cells=2)
    for i in range(2):
        batch = seen[i]                                 # 3 deletion then 3 insertion images of image i
        np.testing.assert_array_equal(batch[1][:, :4], donors[i][:, :4])
        np.testing.assert_array_equal(batch[1][:, 4:], x[i][:, 4:])
        np.testing.assert_array_equal(batch[2], donors[i])                       # fully deleted: the donor
        np.testing.assert_array_equal(batch[4][:, :4], x[i][:, :4])
        np.testing.assert_array_equal(batch[4][:, 4:], donors[i][:, 4:])
        np.testing.assert_array_equal(batch[3], donors[i])                       # insertion starts from it


def test_grad_cam_is_never_ranked_finer_than_its_grid():
    # catches: Q4.4 ranking at attribution.faithfulness_cells whatever Grad-CAM's grid (`cells = requested`),
    # or a pixel-level (cells 0) resolution left in the IG - Grad-CAM designs
    from types import SimpleNamespace

    from report import q4_gradcam
    from xaikit.faithfulness import ranking_cells
    for requested in (1, 2, 4, 7, 8, 16, 64):
        for grid in (1, 2, 4, 7, 8, 14):
            assert 1 <= ranking_cells(requested, grid) <= grid
            assert ranking_cells(requested, grid) == min(requested, grid)
            ctx = SimpleNamespace(cfg={"attribution.faithfulness_cells": requested})
            name, cells = q4_gradcam.faith_cells(ctx, grid)
            assert name == f"{cells}x{cells} cells" and 1 <= cells <= grid
    with pytest.raises(ValueError):
        ranking_cells(8, 0)


def test_a_fill_without_an_informative_comparison_does_not_vote():
    # catches: the pooled claim turned into "depends on the fill" by a fill whose curves are all saturated
    # (the same-class fill often is: the other image of the class scores as high as the image)
    from report.q4_gradcam import faithfulness_word, holm_family, pooled_summary, winner_counts
    ig_fill = [_cell(0.001, -0.3), _cell(0.001, -0.3)]
    saturated = [_cell(0.001, 0.3, informative=False)]
    holm_family(ig_fill + saturated, 0.05)
    fills = [{"summary": winner_counts(ig_fill)}, {"summary": winner_counts(saturated)}]
    pooled = pooled_summary(ig_fill + saturated, fills)
    assert pooled["says"]["IG"] and pooled["claim"].startswith("IG ranks")
    assert faithfulness_word(fills) == "IG"
    assert faithfulness_word(fills[1:]) == "uninformative"
