import keras
import numpy as np
import pytest

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


def test_border_zone():
    """Catches: a zone of the wrong width or one missing a side."""
    border = regions.border_zone((10, 10), 0.1)
    assert border.sum() == 36 and border[0].all() and border[:, -1].all() and not border[1:-1, 1:-1].any()


def test_lung_mask_finds_dark_lungs():
    img = chest_like(np.random.default_rng(0), 128, False) / 255.0
    mask = regions.segment_lungs(img).mask
    yy, xx = np.mgrid[0:128, 0:128] / 128
    truth = np.zeros((128, 128), bool)
    for cx in (0.3, 0.7):
        truth |= ((xx - cx) / 0.15) ** 2 + ((yy - 0.5) / 0.28) ** 2 <= 1
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.7, iou


def test_lung_mask_fills_bright_opacity():
    """A consolidation (bright patch) biting into a lung's side stays inside its mask, and a
    featureless image falls back to the prior. Catches: dropping the per-lung hull (a mask of
    dark pixels only) and a fallback that is never flagged."""
    img = chest_like(np.random.default_rng(0), 128, False) / 255.0
    yy, xx = np.mgrid[0:128, 0:128] / 128
    opacity = ((xx - 0.4) / 0.08) ** 2 + ((yy - 0.5) / 0.12) ** 2 <= 1
    lung = ((xx - 0.3) / 0.15) ** 2 + ((yy - 0.5) / 0.28) ** 2 <= 1
    img[opacity & lung] = 0.7
    seg = regions.segment_lungs(img)
    assert not seg.fallback
    assert seg.mask[opacity & lung].mean() > 0.75      # a mask of dark pixels alone: ~0
    flat = regions.segment_lungs(np.full((64, 64), 0.5))
    assert flat.fallback and flat.mask.any()


def test_polygon_mask_and_dice():
    """Catches: x and y swapped in the rasteriser, Dice computed as IoU."""
    m = regions.polygon_mask([[[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]], (10, 20))
    assert m[:, :9].all() and not m[:, 11:].any()        # the left half, x along the width
    a = np.zeros((4, 4), bool); a[:2] = True
    b = np.zeros((4, 4), bool); b[1:3] = True
    assert regions.dice(a, b) == pytest.approx(0.5)        # IoU would be 1/3
    with pytest.raises(ValueError, match=r"coordinates in \[0, 1\]"):
        regions.polygon_mask([[[0, 0], [2, 0], [0, 1]]], (4, 4))


def test_image_shares():
    """Catches: signed instead of absolute mass, and an empty map counted as all inside."""
    maps = np.zeros((3, 4, 4)); maps[0, :2] = 1; maps[1] = -1
    mask = np.zeros((4, 4), bool); mask[:2] = True
    np.testing.assert_allclose(regions.image_shares(maps, mask), [1.0, 0.5, 0.0])


def test_consistency_test_detects_class_structure_and_not_noise():
    """Catches: a p-value computed with the wrong tail, or a bootstrap that ignores resampling."""
    rng = np.random.default_rng(0)
    proto = rng.uniform(size=(2, 8, 8))
    labels = np.repeat([0, 1], 12)
    maps = proto[labels] + rng.normal(0, 0.3, (24, 8, 8))
    t = similarity.consistency_test(maps, labels, n_perm=300, n_boot=300, seed=1)
    assert t.diff > 0.2 and t.p_value < 0.01 and t.lo > 0
    noise = similarity.consistency_test(rng.uniform(size=(24, 8, 8)), labels, n_perm=300, n_boot=300, seed=1)
    assert noise.p_value > 0.05 and noise.lo < 0 < noise.hi


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
    cg = deletion_insertion(model, x, good, 1, steps=8, fill=0.0, start=0.0)
    cr = deletion_insertion(model, x, rand, 1, steps=8, fill=0.0, start=0.0)
    assert cg.deletion_auc.mean() < cr.deletion_auc.mean()
    assert cg.insertion_auc.mean() > cr.insertion_auc.mean()
    assert cg.deletion[:, 0] == pytest.approx(cr.deletion[:, 0])
    # matched resolution: ranked at 2x2 cells the good map removes the whole quadrant first
    cc = deletion_insertion(model, x, good, 1, steps=4, fill=0.0, start=0.0, cells=2)
    p_full, p_empty = model.predict(x[:1], verbose=0)[0, 1], model.predict(0 * x[:1], verbose=0)[0, 1]
    assert cc.deletion[0, 1] == pytest.approx(p_empty, abs=1e-5)   # 1 of 4 cells gone: the quadrant
    assert cc.insertion[0, 1] == pytest.approx(p_full, abs=1e-5)


def test_curve_end_points_are_image_fill_and_start():
    """Catches: deletion starting from the fill, insertion from the image, or a fraction grid
    that never reaches 1 (end-points of Petsiuk et al.'s curves)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, 8, 8, 1)).astype(np.float32)
    fill = rng.uniform(size=(8, 8, 1)).astype(np.float32)
    start = rng.uniform(size=(2, 8, 8, 1)).astype(np.float32)
    calls = []
    c = deletion_insertion(model, x, rng.uniform(size=(2, 8, 8)), [0, 1], steps=3, fill=fill, start=start,
                           progress=calls.append)
    assert calls == [1, 1]                                   # one tick per image
    one = deletion_insertion(model, x, rng.uniform(size=(2, 8, 8)), 0, steps=1, fill=fill, start=start)
    np.testing.assert_allclose(one.fractions, [0.0, 1.0])   # one step: just the two end-points
    p = lambda a: model.predict(a, verbose=0)
    np.testing.assert_allclose(c.deletion[:, 0], p(x)[[0, 1], [0, 1]], rtol=1e-5)
    np.testing.assert_allclose(c.deletion[:, -1], p(np.stack([fill, fill]))[[0, 1], [0, 1]], rtol=1e-5)
    np.testing.assert_allclose(c.insertion[:, 0], p(start)[[0, 1], [0, 1]], rtol=1e-5)
    np.testing.assert_allclose(c.insertion[:, -1], p(x)[[0, 1], [0, 1]], rtol=1e-5)
    assert c.fractions[0] == 0 and c.fractions[-1] == 1 and len(c.fractions) == 4


def test_unit_ranks_group_cells():
    """Catches: cell ranks that do not follow the pooled map, or cells split across ranks."""
    from xaikit.faithfulness import unit_ranks
    m = np.zeros((8, 8)); m[4:, :4] = 5.0; m[:4, 4:] = 1.0
    rank, units = unit_ranks(m, cells=2)
    assert units == 4
    assert set(np.unique(rank[4:, :4])) == {0} and set(np.unique(rank[:4, 4:])) == {1}
    prank, punits = unit_ranks(m, 0)
    assert punits == 64 and prank[4:, :4].max() == 15
    with pytest.raises(ValueError, match="cells expects <= 8"):
        unit_ranks(m, 9)


def test_atlas_is_a_majority_vote():
    """Catches: a union (any vote) or intersection (all votes) instead of the majority."""
    left = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
    top = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]]
    m = regions.atlas_mask([[left], [left], [top]], (8, 8))
    assert m[6, 1] and not m[1, 6]           # 2 of 3 cover the lower left, 1 of 3 the upper right
    with pytest.raises(ValueError, match="at least one"):
        regions.atlas_mask([], (8, 8))


def test_committed_hand_masks_are_valid_and_disjoint():
    """The hand-drawn lung fields: development and validation images differ, every polygon is
    well-formed, and the two lungs of an image do not overlap."""
    from report import measures
    d = measures.hand_drawn()
    assert len(d["development"]) == 20 and len(d["validation"]) == 20
    assert all(k.startswith("train/") for k in d["development"])
    assert all(k.startswith("test/") for k in d["validation"])
    for part in ("development", "validation"):
        for name, lungs in d[part].items():
            left, right = (regions.polygon_mask([lungs[s]], (64, 64)) for s in ("left", "right"))
            assert left.sum() > 100 and right.sum() > 100, name
            assert (left & right).sum() < 5, name


def test_hog_memo_returns_each_maps_own_features():
    # catches: a memo key that ignores the map's content, shape or dtype (two maps sharing one
    # entry), or features that a caller could overwrite in the memo
    from skimage.feature import hog as skimage_hog

    from xaikit import similarity
    rng = np.random.default_rng(0)
    a, b = rng.random((32, 32)), rng.random((32, 32))
    for m in (a, b, a.astype(np.float32), a.reshape(16, 64), a):
        cell = max(4, m.shape[0] // 16)
        expected = skimage_hog(similarity.unit_range(m), pixels_per_cell=(cell, cell), cells_per_block=(2, 2))
        got = similarity.hog_features(m)
        assert np.array_equal(got, expected)
        assert not got.flags.writeable


def test_spearman_equals_scipys_bit_for_bit():
    # catches: ranks remembered under a key that ignores content or size, ranks rounded when kept as
    # float32, ties ranked other than scipy's average, or a Pearson of ranks computed in another order
    # (spearman feeds every Q5 number: a last-bit change would move them)
    from scipy import stats

    from xaikit import similarity
    rng = np.random.default_rng(3)
    for t in range(60):
        side = (8, 16, 64)[t % 3]
        a, b = rng.normal(size=(side, side)).astype(np.float32), rng.normal(size=(side, side))
        if t % 4 == 0:
            a = np.round(a, 1)                 # many ties
        if t % 5 == 0:
            b = np.maximum(b, 0)               # a block of tied zeros
        for u, v in ((a, b), (np.abs(a), np.abs(b)), (b, a)):
            assert similarity.spearman(u, v) == float(stats.spearmanr(np.ravel(u), np.ravel(v)).statistic)
    r = similarity.ranks(a)
    assert not r.flags.writeable
    assert similarity.spearman(np.zeros((4, 4)), b[:4, :4]) == 0.0
    with pytest.raises(ValueError, match="one size"):
        similarity.spearman(a, b[:4, :4])
