"""Figure files: tall grids are stored as strips cut at blank rows (report/figures.py)."""

import io

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from report import figures
from xaikit import plots


def _image(bands, h=300, w=40):
    """A dark H x W x 3 image with white rows at the given (start, stop) bands."""
    a = np.zeros((h, w, 3), np.uint8)
    for s, e in bands:
        a[s:e] = 255
    return a


def test_cut_rows_cuts_in_the_middle_of_each_blank_band():
    # catches: cutting at the band's first row, or inside ink
    assert figures.cut_rows(_image([(100, 110), (200, 204)]), min_strip_px=50) == [105, 202]


def test_cut_rows_keeps_strips_at_least_the_minimum_high():
    # catches: a greedy loop that ignores the strip height (or the last strip's)
    a = _image([(30, 34), (100, 110), (280, 284)])
    assert figures.cut_rows(a, min_strip_px=50) == [105]


def test_cut_rows_ignores_outer_margins_and_single_blank_rows():
    # catches: cutting off the white top margin as an empty strip, or at a 1-px line
    a = _image([(0, 20), (150, 151), (290, 300)])
    assert figures.cut_rows(a, min_strip_px=10) == []


def _grid(rows: int) -> Figure:
    rng = np.random.default_rng(0)
    return plots.panel_grid([[plots.Panel(rng.uniform(size=(16, 16)), "heat") for _ in range(4)]
                             for _ in range(rows)], row_titles=[f"image {i}" for i in range(rows)], cell=1.45)


def _sizes(strips):
    return [Image.open(io.BytesIO(data)).size for data, _ in strips]


def test_tall_grid_is_stored_as_strips_of_equal_width_that_add_up():
    # catches: strips cut from different renders or widths, or rows lost between strips
    fig = _grid(5)
    strips = figures.encode_strips(fig)
    sizes = _sizes(strips)
    assert len(strips) == 5
    assert len({w for w, _ in sizes}) == 1
    w_in, h_in = fig.get_size_inches()
    dpi = figures.raster_dpi(w_in, h_in)
    assert abs(sum(h for _, h in sizes) - round(h_in * dpi)) <= 1


def test_short_figure_stays_whole():
    # catches: splitting every figure (a chart cut between its title and its axes)
    assert len(figures.encode_strips(_grid(1))) == 1
    assert not figures.splits(6.0, 3.0) and figures.splits(7.0, 6.0)


def test_strips_print_at_the_figure_width(tmp_path):
    # catches: a strip shrunk to the text block's height rule, printed narrower than its neighbours
    fig = _grid(6)
    w_in = fig.get_size_inches()[0]
    printed = set()
    for k, (data, suffix) in enumerate(figures.encode_strips(fig)):
        path = tmp_path / f"strip{k}{suffix}"
        Image.open(io.BytesIO(data)).save(path, dpi=Image.open(io.BytesIO(data)).info.get("dpi"))
        printed.add(figures.printed_width(path))
    assert printed == {round(w_in * figures.width_scale(w_in), 2)}
