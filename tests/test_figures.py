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


# --- readable panels (#24): size, colour bars, names, and the PDF check that finds panels ---

from report import measures  # noqa: E402
from tests.pdf_layout import MIN_PANEL_IN, panel_boxes  # noqa: E402


def _panel_inches(fig) -> list[float]:
    """Printed width of every image panel: axes width x figure width x the report's shrink."""
    w_in = fig.get_size_inches()[0]
    return [ax.get_position().width * w_in * figures.width_scale(w_in)
            for ax in fig.axes if ax.get_gid() == "panel"]


def _maps_row(rng, title=""):
    x = rng.uniform(size=(32, 32))
    return [plots.Panel(x, "gray", title), plots.Panel(x, "heat"), plots.Panel(x - 0.5, "signed"),
            plots.Panel(x, "overlay", under=x)]


def test_a_full_row_of_panels_prints_at_least_the_minimum_width():
    # catches: row titles at the left (1.2 in taken from the panels), or a cell that shrinks with its titles
    rng = np.random.default_rng(0)
    fig = plots.panel_grid([_maps_row(rng) for _ in range(3)], col_titles=("image", "|IG|", "signed", "overlay"),
                           row_titles=["person1000_bacteria_2931.jpeg: PNEUMONIA, P(pn)=0.93, target PNEUMONIA"] * 3)
    widths = _panel_inches(fig)
    assert len(widths) == 12 and min(widths) >= MIN_PANEL_IN
    assert fig.get_size_inches()[0] <= figures.MAX_WIDTH_IN      # printed at its own size
    assert plots.MAX_COLS * plots.CELL_IN + 2 * plots.MARGIN_IN + (plots.MAX_COLS - 1) * plots.GAP_IN \
        <= figures.MAX_WIDTH_IN


def _bars(fig) -> int:
    return sum(ax.get_gid() == "colorbar" for ax in fig.axes)


def test_every_grid_of_maps_has_colour_bars_and_images_alone_have_none():
    # catches: a map figure without a colour bar (the bars dropped with a layout change)
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(16, 16))
    assert _bars(plots.panel_grid([_maps_row(rng)])) == 3                   # under each column of maps
    assert _bars(plots.panel_grid([[plots.Panel(x, "gray"), plots.Panel(x, "mask", under=x)]])) == 0
    mixed = [[plots.Panel(x, "gray")] * 2, [plots.Panel(x, "heat", clip=99)] * 2,
             [plots.Panel(x, "heat", clip=100)] * 2]                         # transposed: columns mix scales
    assert _bars(plots.panel_grid(mixed)) == 2                              # one bar per scale
    images = np.stack([x[..., None]] * 4)
    assert _bars(measures.mean_map_figure(rng.normal(size=(4, 16, 16)), np.array([0, 1, 0, 1]), images, "IG")) >= 1


def test_names_are_wrapped_never_cut():
    # catches: titles cut at 20 characters ("person36_virus_81.jp")
    name = "person1000_bacteria_2931.jpeg"
    wrapped = plots.wrap_text(f"{name}: PNEUMONIA, P(pn)=0.93", 20)
    assert all(len(line) <= 20 for line in wrapped.split("\n"))
    assert name in wrapped.replace("\n", "")
    assert plots.wrap_text("abcdefghij", 4) == "abcd\nefgh\nij"
    cap = measures.caption_rows(np.array([f"test/PNEUMONIA/{name}"]), np.array([1]), np.array([0.3]),
                                np.array([0]), 0.5)[0]
    assert name in cap and "MISSED" in cap


def _render(fig, dpi=100) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_pdf_check_measures_panels_and_ignores_charts():
    # catches: a detector that misses panels (the check always passes), measures text or colour
    # bars as panels, or fails on charts without panels (bars, curves with shaded bands)
    rng = np.random.default_rng(2)
    for cell in (1.0, 1.6):
        boxes = panel_boxes(_render(plots.panel_grid([_maps_row(rng) for _ in range(2)], cell=cell,
                                                     row_titles=["a row", "another row"])), 100)
        widths = [(r - l) / 100 for _, _, l, r in boxes]
        assert len(widths) >= 6                            # gray, heat, overlay per row (+ signed when dense)
        assert all(abs(w - cell) < 0.05 for w in widths)
    charts = [plots.bar_counts({"train": {"NORMAL": 1300, "PNEUMONIA": 3800}, "val": {"NORMAL": 900, "PNEUMONIA": 700}}),
              plots.curve_panels(np.linspace(0, 1, 9), {"a": {"IG": rng.uniform(size=(20, 9)),
                                                             "Grad-CAM": rng.uniform(size=(20, 9))}}, xlabel="share")]
    for chart in charts:
        assert panel_boxes(_render(chart), 100) == []


def test_titles_fit_over_their_panels():
    # catches: column titles left unwrapped or wrapped too wide (a long file name runs into the
    # neighbouring column's title)
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(16, 16))
    names = ["person1000_bacteria_2931.jpeg (PNEUMONIA)", "NORMAL2-IM-1427-0001.jpeg (NORMAL)",
             "IM-0084-0001.jpeg (NORMAL)", "signed IG (red +, blue -)"]
    fig = plots.panel_grid([[plots.Panel(x, "heat")] * 4], col_titles=names)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    renderer = FigureCanvasAgg(fig).get_renderer()
    limit = (plots.CELL_IN + plots.GAP_IN) * fig.dpi
    widths = [t.get_window_extent(renderer).width for t in fig.texts]
    assert len(widths) == 4 and max(widths) <= limit
    assert "person1000_bacteria_2931.jpeg" in fig.texts[0].get_text().replace("\n", "")
