import keras
import numpy as np
import pytest

from report.q5_sanity import overall
from xaikit import regions, similarity
from xaikit.faithfulness import deletion_insertion

from .conftest import chest_like


def test_identical_negated_and_independent_maps():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(32, 32))
    assert similarity.spearman(a, a) == pytest.approx(1.0)
    assert similarity.spearman(a, -a) == pytest.approx(-1.0)
    assert similarity.ssim(a, a) == pytest.approx(1.0)
    assert similarity.hog_pearson(np.abs(a), np.abs(a)) == pytest.approx(1.0)
    n = 32 * 32
    rhos = [similarity.spearman(rng.normal(size=(32, 32)), rng.normal(size=(32, 32))) for _ in range(20)]
    assert abs(np.mean(rhos)) < 3 / np.sqrt(n * 20)     # 3 standard errors of the mean
    assert max(abs(r) for r in rhos) < 4 / np.sqrt(n)
    assert similarity.spearman(np.zeros((4, 4)), a[:4, :4]) == 0.0


def test_rank_corr_matrix_matches_scipy():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(5, 8, 8))
    c = similarity.rank_corr_matrix(maps)
    for i in range(5):
        for j in range(5):
            assert c[i, j] == pytest.approx(similarity.spearman(maps[i], maps[j]), abs=1e-9)


def test_consistency_within_beats_across():
    rng = np.random.default_rng(2)
    left = np.zeros((16, 16)); left[:, :8] = 1
    right = left[:, ::-1]
    maps = np.stack([left + 0.3 * rng.normal(size=(16, 16)) for _ in range(6)] +
                    [right + 0.3 * rng.normal(size=(16, 16)) for _ in range(6)])
    c = similarity.consistency(maps, np.array([0] * 6 + [1] * 6))
    assert c.within_a > 0.5 and c.within_b > 0.5 and c.across < -0.3


def test_pool_shapes():
    assert similarity.pool(np.ones((2, 32, 32, 1)), 8).shape == (2, 8, 8)
    assert similarity.pool(np.ones((2, 30, 30)), 8).shape == (2, 8, 8)


def test_region_shares_and_border():
    masks = np.zeros((2, 10, 10), bool); masks[:, 3:7, 3:7] = True
    maps = masks.astype(float)
    border = regions.border_zone((10, 10), 0.1)
    assert border.sum() == 36
    r = regions.region_shares(maps, masks, border)
    assert r.lung_share == pytest.approx(1.0) and r.lung_area == pytest.approx(0.16)
    assert r.border_share == 0.0 and r.lung_ratio == pytest.approx(1 / 0.16)


def test_lung_mask_finds_dark_lungs():
    img = chest_like(np.random.default_rng(0), 128, False) / 255.0
    mask = regions.lung_mask(img)
    yy, xx = np.mgrid[0:128, 0:128] / 128
    truth = np.zeros((128, 128), bool)
    for cx in (0.3, 0.7):
        truth |= ((xx - cx) / 0.15) ** 2 + ((yy - 0.5) / 0.28) ** 2 <= 1
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.7, iou


def test_deletion_beats_random_on_known_model():
    # P(class 1) depends only on the top-left quadrant's brightness
    inp = keras.Input((16, 16, 1))
    crop = keras.layers.Cropping2D(((0, 8), (0, 8)))(inp)
    s = keras.layers.GlobalAveragePooling2D()(crop)
    dense = keras.layers.Dense(2)
    out = keras.layers.Activation("softmax")(dense(s))
    model = keras.Model(inp, out)
    dense.set_weights([np.array([[-8.0, 8.0]], np.float32), np.zeros(2, np.float32)])
    x = np.full((3, 16, 16, 1), 0.8, np.float32)
    good = np.zeros((3, 16, 16)); good[:, :8, :8] = 1
    rand = np.random.default_rng(0).uniform(size=(3, 16, 16))
    cg = deletion_insertion(model, x, good, 1, steps=8, blur_sigma=2)
    cr = deletion_insertion(model, x, rand, 1, steps=8, blur_sigma=2)
    assert cg.deletion_auc.mean() < cr.deletion_auc.mean()
    assert cg.deletion[:, 0] == pytest.approx(cr.deletion[:, 0])


def test_overall_verdict_over_metrics():
    # catches: "mixed" reported as pass, or an all-fail reported as mixed
    assert overall({"a": True, "b": True}) == "pass"
    assert overall({"a": False, "b": False}) == "fail"
    assert overall({"a": True, "b": False}) == "mixed"
    with pytest.raises(ValueError):
        overall({})
