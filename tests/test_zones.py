"""Named anatomical zones (xaikit.regions.zones), their numbers (report.measures.zone_numbers) and
the sentences of Q3.2 / Q4.2 that name them (issue #24, must-show 2)."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from report import measures
from report.render import answer_env, answer_variables
from xaikit import regions

S = {"lung_margin": 0.2, "border_frac": 0.1, "alpha": 0.05, "level": 0.95, "n_boot": 300, "seed": 0}
FIXTURE = Path(__file__).parent / "fixtures" / "answer_variables.json"


def two_lungs(size=40):
    """Two rectangles: a wide one on the image's left (the patient's right lung), a narrow one on the right."""
    m = np.zeros((size, size), bool)
    m[10:30, 6:16] = True
    m[12:28, 24:32] = True
    return m


@pytest.mark.parametrize("size", [64, 128])
def test_atlas_zones_partition_the_image_and_none_is_empty(size):
    """Catches: overlapping zones (border not taking precedence), pixels left in no zone, a zone that
    vanishes at one resolution (e.g. a lateral wall swallowed by the border strip)."""
    z = regions.zones(measures.atlas(size), regions.border_zone((size, size), S["border_frac"]))
    assert list(z) == list(regions.ZONES)
    stack = np.stack(list(z.values())).astype(int)
    assert stack.shape == (len(regions.ZONES), size, size)
    assert np.all(stack.sum(0) == 1)
    assert all(m.any() for m in z.values()), {k: int(m.sum()) for k, m in z.items()}
    assert np.array_equal(z["border"], regions.border_zone((size, size), S["border_frac"]))


def test_zones_on_known_geometry():
    """Catches: the lungs named from the image's side instead of the patient's (right lung = image
    left), above/below swapped, medial and lateral swapped, a lung pixel outside both lungs."""
    lungs = two_lungs()
    border = regions.border_zone(lungs.shape, 0.05)          # 2 px
    z = regions.zones(lungs, border)
    assert z["right_lung"][20, 10] and z["left_lung"][20, 28]
    assert (z["right_lung"] | z["left_lung"]).sum() == (lungs & ~border).sum()
    assert z["above"][5, 10] and z["below"][35, 10]
    assert z["mediastinum"][20, 20] and z["lateral"][20, 3] and z["lateral"][20, 35]
    with pytest.raises(ValueError, match="empty"):
        regions.zones(np.zeros_like(lungs), border)
    with pytest.raises(ValueError, match="shape"):
        regions.zones(lungs, border[:-1])


def test_zone_numbers_find_the_zone_maps_favour():
    """Catches: the ratio not divided by the zone's area (analytic share / area), the zones of the
    patient's right and left lung swapped, the class difference with the wrong sign (PNEUMONIA -
    NORMAL), a top or bottom zone named when every ratio is 1 (constant maps)."""
    size, n = 40, 16
    lungs = two_lungs(size)
    zs = measures.zone_masks(lungs, S["border_frac"])
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], n // 2)
    maps = rng.uniform(0.5, 1.0, (n, size, size))
    maps[labels == 0] += 4 * zs["above"]          # NORMAL maps favour above the lungs
    maps[labels == 1] += 4 * zs["right_lung"]     # PNEUMONIA maps favour the patient's right lung
    flat = rng.uniform(0.5, 1.0, (n, size, size))
    z = measures.zone_numbers(maps, lungs, labels, {"input": flat}, S)
    assert z["NORMAL"]["top"]["zone"] == "above" and z["PNEUMONIA"]["top"]["zone"] == "right_lung"
    r = z["NORMAL"]["zones"]["above"]
    share = np.mean([m[zs["above"]].sum() / m.sum() for m in maps[labels == 0]])
    assert r["share"] == pytest.approx(share) and r["ratio"]["value"] == pytest.approx(share / zs["above"].mean())
    assert r["beyond_input"] == "more" and r["word"] == "over-represented"
    assert z["NORMAL"]["bottom"]["ratio"]["hi"] < 1
    b = z["between"]
    assert b["checkable"] and b["differs"] and b["both_ways"]
    assert b["zones"]["right_lung"]["diff"]["lo"] > 0 and b["zones"]["above"]["diff"]["hi"] < 0
    assert "the right lung" in b["more_on_text"]["PNEUMONIA"] and "above the lungs" in b["more_on_text"]["NORMAL"]
    assert z["prior_repeats"]                     # one zone map for all images: the prior repeats the map
    # maps that follow the area: no zone stands out, none under-represented, no class difference
    even = measures.zone_numbers(np.ones_like(flat), lungs, labels, {"input": flat}, S)
    assert even["NORMAL"]["top"] is None and even["NORMAL"]["bottom"] is None
    assert even["between"]["checkable"] and not even["between"]["differs"]
    table = measures.zone_table(z, "IG")
    assert list(table["zone"]) == [regions.ZONE_LABELS[k] for k in regions.ZONES]


def test_zone_between_needs_two_images_per_class():
    """Catches: an interval from a single image of a class."""
    lungs = two_lungs()
    maps = np.random.default_rng(1).uniform(size=(4, 40, 40))
    z = measures.zone_numbers(maps, lungs, np.array([0, 1, 1, 1]), {"input": maps}, S)
    assert z["NORMAL"]["top"] is None and not z["between"]["checkable"]


def _render(variables, name):
    return answer_env().get_template(name).render(**variables)


@pytest.mark.parametrize("q, name", [("q3", "q3_2.md"), ("q4", "q4_2.md")])
def test_swapping_the_zone_ranking_changes_the_sentence(q, name):
    """Must-show 2: the sentence names the zone from the numbers. The zone that stands out swaps its
    numbers with the lowest-ranked zone, and the sentence names that zone instead.
    Catches: a zone name typed into the prose, the sentence reading a fixed zone's row."""
    fx = json.loads(FIXTURE.read_text())
    numbers = fx["numbers"]
    where = measures.ZONE_WHERE
    for c in ("NORMAL", "PNEUMONIA"):
        z = numbers[q]["zones"][c]
        if z["top"] is None:                      # no zone stands out in this build: the forced case below
            continue
        first = z["top"]["zone"]
        second = min(z["zones"], key=lambda k: z["zones"][k]["ratio"]["value"])
        swapped = copy.deepcopy(numbers)
        sz = swapped[q]["zones"][c]
        sz["zones"][first], sz["zones"][second] = z["zones"][second], z["zones"][first]
        measures.set_extremes(sz)     # as zone_numbers does
        assert sz["top"]["zone"] == second
        base = _render(answer_variables(numbers, fx["config"], fx["profile"]), name)
        flipped = _render(answer_variables(swapped, fx["config"], fx["profile"]), name)
        assert f"of its mass {where[first]}" in base and f"of its mass {where[first]}" not in flipped
        assert f"of its mass {where[second]}" in flipped
    # numbers built to favour one zone, then another, decide the sentence whatever the build
    for c in ("NORMAL", "PNEUMONIA"):
        texts = []
        for zone in ("above", "border"):
            forced = copy.deepcopy(numbers)
            fz = forced[q]["zones"][c]
            fz["zones"] = {k: {**v, "share": 0.5 if k == zone else 0.1,
                               "ratio": ({"value": 3.0, "lo": 2.5, "hi": 3.5, "n": 10} if k == zone else
                                         {"value": 1.0, "lo": 0.8, "hi": 1.2, "n": 10})}
                           for k, v in fz["zones"].items()}
            measures.set_extremes(fz)
            assert fz["top"]["zone"] == zone and fz["bottom"] is None
            texts.append(_render(answer_variables(forced, fx["config"], fx["profile"]), name))
            assert f"On {c} images" in texts[-1]
            assert f"50% of its mass {where[zone]}, 3.0x that zone's area" in texts[-1]
        assert texts[0] != texts[1]

def test_zone_figure_draws_every_zone_once_with_a_legend():
    """Catches: a zone missing from the legend (or drawn twice), a mask of the wrong shape drawn."""
    from xaikit import plots
    lungs = two_lungs()
    fig = measures.zone_figure(np.full((40, 40, 1), 0.5), lungs, S["border_frac"])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == len(regions.ZONES)
    assert [t.rsplit(",", 1)[0] for t in labels] == [regions.ZONE_LABELS[z] for z in regions.ZONES]
    with pytest.raises(ValueError, match="shape"):
        plots.zone_map(np.zeros((40, 40)), {"a": np.zeros((30, 40), bool)})
