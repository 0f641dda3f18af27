"""Figures. Every function returns a ``matplotlib.figure.Figure``; the caller saves it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


HEAT, SIGNED = "inferno", "RdBu_r"     # magnitudes (heat maps and overlays) and signed maps


@dataclass(frozen=True)
class Panel:
    """One image cell: ``kind`` is gray (an image), heat (|map|), signed (diverging) or overlay."""

    data: np.ndarray
    kind: str = "gray"
    title: str = ""
    under: np.ndarray | None = None      # the image under an overlay
    clip: float = 99.0                   # percentile clipping for heat / signed maps


def _show(ax, p: Panel, title: bool = True) -> None:
    d = np.asarray(p.data, np.float64)
    if d.ndim == 3:
        d = d.sum(-1) if p.kind != "gray" else d[..., 0]
    if p.kind == "gray":
        ax.imshow(d, cmap="gray", vmin=0, vmax=1 if d.max() <= 1 else 255)
    elif p.kind == "heat":
        top = np.percentile(np.abs(d), p.clip) or 1.0
        ax.imshow(np.abs(d), cmap=HEAT, vmin=0, vmax=top)
    elif p.kind == "signed":
        top = np.percentile(np.abs(d), p.clip) or 1.0
        ax.imshow(d, cmap=SIGNED, vmin=-top, vmax=top)
    elif p.kind == "overlay":
        under = np.asarray(p.under, np.float64)
        under = under[..., 0] if under.ndim == 3 else under
        ax.imshow(under, cmap="gray", vmin=0, vmax=1)
        top = np.percentile(np.abs(d), p.clip) or 1.0
        level = np.clip(np.abs(d) / top, 0, 1)
        rgba = matplotlib.colormaps[HEAT](level)
        rgba[..., 3] = 0.85 * level          # transparent where the map is low
        ax.imshow(rgba)
    elif p.kind == "mask":
        under = np.asarray(p.under, np.float64)
        under = under[..., 0] if under.ndim == 3 else under
        ax.imshow(under, cmap="gray", vmin=0, vmax=1)
        ax.contour(d, levels=[0.5], colors=["lime"], linewidths=1.2)
    else:
        raise ValueError(f"panel kind expects gray, heat, signed, overlay or mask, got {p.kind!r}")
    ax.set_xticks([])
    ax.set_yticks([])
    if p.title and title:
        ax.set_title(p.title, fontsize=7)


def wrap_text(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters, never cutting a character off:
    lines break at spaces; a word longer than a line (a file name) breaks after ``_`` or ``-``,
    or is split where it has none. Existing line breaks are kept."""
    import re
    if width < 1:
        raise ValueError(f"wrap_text expects a width of at least 1 character, got {width}")
    out = []
    for para in str(text).split("\n"):
        pieces = []                      # (piece, space before it)
        for word in para.split(" "):
            parts = [word] if len(word) <= width else [t for t in re.split(r"(?<=[_\-])", word) if t]
            for k, part in enumerate(parts):
                while len(part) > width:
                    pieces.append((part[:width], k == 0))
                    part, k = part[width:], 1
                pieces.append((part, k == 0))
        line = ""
        for piece, spaced in pieces:
            joined = (line + " " + piece if spaced else line + piece) if line else piece
            if len(joined) > width and line:
                out.append(line)
                line = piece
            else:
                line = joined
        out.append(line)
    return "\n".join(out)


def chunk(panels: Sequence[Panel], ncols: int) -> list[list[Panel]]:
    """A flat list of panels reflowed into rows of at most ``ncols`` (the last row may be shorter)."""
    if ncols < 1:
        raise ValueError(f"chunk expects at least 1 column, got {ncols}")
    return [list(panels[i:i + ncols]) for i in range(0, len(panels), ncols)]


# Layout of panel_grid, in inches (the report prints figures at most 7.0 in wide: with four columns of
# 1.6 in the grid is 6.82 in wide and every panel prints at 1.6 in).
MAX_COLS = 4                        # panels per row that fit the text block at >= 1.5 in each
CELL_IN = 1.6                       # default panel side
MARGIN_IN, GAP_IN, ROW_GAP_IN = 0.06, 0.1, 0.1
TITLE_PT, ROW_TITLE_PT, COL_TITLE_PT = 7.0, 7.5, 8.0
BAR_BLOCK_IN = 0.42                 # a colour bar, its tick labels and its label
MAP_KINDS = ("heat", "signed", "overlay")


def _lines(text: str) -> int:
    return text.count("\n") + 1 if text else 0


def _text_inches(text: str, pt: float, bold: bool = False) -> float:
    """Width in inches of the longest line of ``text`` set in the default font at ``pt``."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath
    prop = FontProperties(weight="bold" if bold else "normal")
    return max((TextPath((0, 0), line, size=pt, prop=prop).get_extents().width
                for line in text.split("\n") if line.strip()), default=0.0) / 72


def _fit(text: str, width_in: float, pt: float, bold: bool = False) -> str:
    """``text`` wrapped (:func:`wrap_text`) at the most characters per line whose set width fits
    ``width_in``."""
    n = max((len(line) for line in text.split("\n")), default=1)
    while n > 8 and _text_inches(wrap_text(text, n), pt, bold) > width_in:
        n -= 1
    return wrap_text(text, max(n, 1))


def _scale_key(p: Panel) -> tuple[str, str] | None:
    """(colour map, top of the scale) of a map panel, None for an image or a mask."""
    if p.kind not in MAP_KINDS:
        return None
    return (SIGNED if p.kind == "signed" else HEAT, "max" if p.clip >= 100 else f"p{p.clip:g}")


def panel_grid(rows: Sequence[Sequence[Panel]], *, col_titles: Sequence[str] = (),
               row_titles: Sequence[str] = (), cell: float = CELL_IN, colorbars: bool = True) -> Figure:
    """A grid of square image panels, each exactly ``cell`` inches wide (rows may be shorter than
    the longest). Titles never shrink the panels: column titles sit above the first row, a row's
    title above that row (left-aligned, wrapped to the row's width), a panel's title above the
    panel (wrapped to its width, or to the width of the untitled panels that follow it in its
    row). Maps get colour bars below the grid: one under each column whose maps share one scale,
    else one per scale."""
    rows = [list(r) for r in rows]
    if not rows or not any(rows):
        raise ValueError("panel_grid expects at least one panel, got none")
    nrows, ncols = len(rows), max(len(r) for r in rows)
    col_t = [_fit(t, cell + 0.6 * GAP_IN, COL_TITLE_PT) for t in col_titles]
    row_t = [_fit(t, ncols * cell + (ncols - 1) * GAP_IN, ROW_TITLE_PT, bold=True) for t in row_titles]
    panel_t = [_panel_titles(row, cell) for row in rows]    # per row: (column, span, wrapped title)
    heads = [_head_in(i, col_t, row_t, panel_t[i]) for i in range(nrows)]
    bars = _bar_places(rows, ncols) if colorbars else []
    width = 2 * MARGIN_IN + ncols * cell + (ncols - 1) * GAP_IN
    height = 2 * MARGIN_IN + sum(heads) + nrows * cell + (nrows - 1) * ROW_GAP_IN + (BAR_BLOCK_IN if bars else 0)
    fig = Figure(figsize=(width, height))
    at = _GridPlace(width, height, cell)
    top = MARGIN_IN
    for i, row in enumerate(rows):
        _draw_titles(fig, at, top, col_t if i == 0 else [], row_t[i] if i < len(row_t) else "", panel_t[i], ncols)
        top += heads[i]
        for j, p in enumerate(row):
            ax = fig.add_axes((at.fx(at.x0(j)), at.fy(top + cell), at.fx(cell), cell / height))
            _show(ax, p, title=False)
            ax.set_gid("panel")
        top += cell + ROW_GAP_IN
    if bars:
        _colorbars(fig, bars, lambda j: (at.fx(at.x0(j) + 0.1 * cell), at.fy(top - ROW_GAP_IN + 0.14),
                                         at.fx(0.8 * cell), 0.09 / height))
    return fig


def _line_in(pt: float) -> float:
    """Line height in inches of text set at ``pt``."""
    return pt * 1.25 / 72


def _panel_titles(row: Sequence[Panel], cell: float) -> list[tuple[int, int, str]]:
    """(column, span, wrapped title) of each titled panel of a row: it spans the untitled panels after it."""
    ts = []
    for j, p in enumerate(row):
        if p.title:
            span = 1
            while j + span < len(row) and not row[j + span].title:
                span += 1
            ts.append((j, span, _fit(p.title, span * cell + (span - 0.4) * GAP_IN, TITLE_PT)))
    return ts


def _head_in(i: int, col_t: list[str], row_t: list[str], panel_t: list) -> float:
    """Height in inches of the titles above row ``i`` (column titles, its row title, its panels' titles)."""
    h = (_line_in(ROW_TITLE_PT) * _lines(row_t[i]) if i < len(row_t) else 0.0) \
        + _line_in(TITLE_PT) * max([_lines(t) for _, _, t in panel_t], default=0) \
        + (_line_in(COL_TITLE_PT) * max([_lines(t) for t in col_t], default=0) if i == 0 else 0.0)
    return h + (0.04 if h else 0.0)


@dataclass(frozen=True)
class _GridPlace:
    """Inches on a panel grid (x from the left, y down from the top) as figure fractions."""

    width: float
    height: float
    cell: float

    def fx(self, x: float) -> float:
        """``x`` inches from the left (or a width) as a share of the figure's width."""
        return x / self.width

    def fy(self, y: float) -> float:
        """``y`` inches down from the top as a figure coordinate (up from the bottom)."""
        return 1 - y / self.height

    def x0(self, j: int) -> float:
        """Left edge of column ``j``."""
        return MARGIN_IN + j * (self.cell + GAP_IN)


def _draw_titles(fig: Figure, at: _GridPlace, y: float, col_t: list[str], row_t: str, panel_t: list,
                 ncols: int) -> None:
    """The titles above a row, from ``y`` down: column titles (given for the first row), its row title, its panels'."""
    cell = at.cell
    if col_t:
        for j, t in enumerate(col_t[:ncols]):
            fig.text(at.fx(at.x0(j) + cell / 2), at.fy(y), t, ha="center", va="top", fontsize=COL_TITLE_PT)
        y += _line_in(COL_TITLE_PT) * max(_lines(t) for t in col_t)
    if row_t:
        fig.text(at.fx(at.x0(0)), at.fy(y), row_t, ha="left", va="top", fontsize=ROW_TITLE_PT, fontweight="bold")
        y += _line_in(ROW_TITLE_PT) * _lines(row_t)
    for j, span, t in panel_t:
        if span == 1:
            fig.text(at.fx(at.x0(j) + cell / 2), at.fy(y), t, ha="center", va="top", fontsize=TITLE_PT)
        else:
            fig.text(at.fx(at.x0(j)), at.fy(y), t, ha="left", va="top", fontsize=TITLE_PT)


def _bar_places(rows, ncols: int) -> list[tuple[int, tuple[str, str]]]:
    """(column, scale) of each colour bar: under every column whose maps share one scale when
    every column of maps does; else one bar per scale, from the left."""
    per_col = []
    for j in range(ncols):
        keys = {_scale_key(r[j]) for r in rows if j < len(r)} - {None}
        per_col.append(keys)
    if all(len(k) <= 1 for k in per_col):
        return [(j, next(iter(k))) for j, k in enumerate(per_col) if k]
    keys = list(dict.fromkeys(_scale_key(p) for r in rows for p in r if _scale_key(p)))
    return list(enumerate(keys))[:ncols]


def _colorbars(fig: Figure, bars, place) -> None:
    """Draw each (column, (cmap, top)) colour bar at ``place(column)`` (figure fractions): the scale
    every map uses, from 0 (or minus its top) to its clip percentile, each map scaled on its own."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    for k, (j, (cmap, top)) in enumerate(bars):
        signed = cmap == SIGNED
        cax = fig.add_axes(place(j))
        cax.set_gid("colorbar")
        bar = fig.colorbar(ScalarMappable(Normalize(-1 if signed else 0, 1), cmap), cax=cax,
                           orientation="horizontal")
        bar.set_ticks([-1, 0, 1] if signed else [0, 1],
                      labels=[f"-{top}", "0", f"+{top}"] if signed else ["0", top])
        bar.ax.tick_params(labelsize=6, length=2, pad=1)
        if k == 0:
            bar.set_label("each map scaled on its own", fontsize=6, labelpad=1)


def bar_counts(table: dict[str, dict[str, int]]) -> Figure:
    """Grouped bars of image counts: ``table[split][class]``."""
    fig = Figure(figsize=(5.5, 3), layout="constrained")
    ax = fig.subplots()
    splits = list(table)
    classes = list(next(iter(table.values())))
    width = 0.8 / len(classes)
    for k, cls in enumerate(classes):
        vals = [table[s][cls] for s in splits]
        bars = ax.bar(np.arange(len(splits)) + k * width, vals, width, label=cls)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(np.arange(len(splits)) + width * (len(classes) - 1) / 2, splits)
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    return fig


def histograms(series: dict[str, np.ndarray], *, xlabel: str, bins: int = 64) -> Figure:
    """Overlaid normalised histograms, one per named series."""
    fig = Figure(figsize=(5.5, 3), layout="constrained")
    ax = fig.subplots()
    for name, values in series.items():
        ax.hist(np.ravel(values), bins=bins, density=True, alpha=0.5, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return fig


def scatter_groups(groups: dict[str, tuple[np.ndarray, np.ndarray]], *, xlabel: str,
                   ylabel: str) -> Figure:
    fig = Figure(figsize=(5.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, (x, y) in groups.items():
        ax.scatter(x, y, s=4, alpha=0.4, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig


def note_figure(text: str) -> Figure:
    """A small figure that only says ``text`` (a figure the build cannot draw, e.g. no training history)."""
    fig = Figure(figsize=(7, 1.0), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    return fig


def training_curves(history: dict[str, list[float]]) -> Figure:
    fig = Figure(figsize=(7, 2.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("loss", "auc")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                vals = history[prefix + key]
                ax.plot(np.arange(1, len(vals) + 1), vals, style,
                        label="train" if not prefix else "validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend(fontsize=8)
    return fig


def confusion(matrices: dict[str, np.ndarray], labels: Sequence[str]) -> Figure:
    """Confusion matrices side by side, ``title -> 2 x 2 counts`` (rows true, columns predicted)."""
    fig = Figure(figsize=(3.2 * len(matrices), 2.8), layout="constrained")
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (title, cm) in zip(axes, matrices.items()):
        cm = np.asarray(cm)
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
    return fig


def roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float]],
        points: dict[str, tuple[float, float]] | None = None) -> Figure:
    """ROC curves ``name -> (fpr, tpr, auc)`` and optional operating points."""
    fig = Figure(figsize=(3.6, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    for name, (x, y) in (points or {}).items():
        ax.plot([x], [y], "o", label=name)
    ax.plot([0, 1], [0, 1], ":", color="gray")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.legend(fontsize=7)
    return fig


def matrix(values: np.ndarray, labels: Sequence[str], *, title: str = "",
           vmin: float = -1.0, vmax: float = 1.0) -> Figure:
    fig = Figure(figsize=(3.2, 2.9), layout="constrained")
    ax = fig.subplots()
    ax.imshow(values, cmap="viridis", vmin=vmin, vmax=vmax)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < (vmin + vmax) / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    return fig


def curve_panels(fractions: np.ndarray, panels: dict[str, dict[str, np.ndarray]], *, xlabel: str,
                 ncols: int = 2) -> Figure:
    """One axis per panel title; in each, mean ± std over images of curves ``name -> N x K``."""
    nrows = int(np.ceil(len(panels) / ncols))
    fig = Figure(figsize=(3.4 * ncols, 2.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True)).ravel()
    for ax, (title, curves) in zip(axes, panels.items()):
        for name, c in curves.items():
            m, s = c.mean(0), c.std(0)
            ax.plot(fractions, m, label=f"{name} ({np.trapezoid(m, fractions):.3f})")
            ax.fill_between(fractions, m - s, m + s, alpha=0.12)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel("P(target class)", fontsize=7)
        ax.legend(fontsize=6, title="map (area)", title_fontsize=6)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig


def interval_bars(values: dict[str, dict[str, tuple[float, float, float]]], *, ylabel: str) -> Figure:
    """Bars ``values[group][series] = (mean, lo, hi)`` with their intervals as error bars."""
    groups = list(values)
    series = list(next(iter(values.values())))
    fig = Figure(figsize=(7.5, 3.3), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(series)
    for k, name in enumerate(series):
        m = np.array([values[g][name][0] for g in groups])
        lo = np.array([values[g][name][1] for g in groups])
        hi = np.array([values[g][name][2] for g in groups])
        ax.bar(np.arange(len(groups)) + k * width, m, width, label=name,
               yerr=np.vstack([m - lo, hi - m]), capsize=2)
    ax.set_xticks(np.arange(len(groups)) + width * (len(series) - 1) / 2, groups, fontsize=7,
                  rotation=20, ha="right")
    ax.axhline(0, color="gray", linewidth=0.5)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncol=min(4, len(series)))
    return fig


OUTCOME_COLOURS = {"pass": "#4daf4a", "fail": "#e41a1c", "inconclusive": "#bdbdbd",
                   "uninformative": "#f0f0f0"}


def cut_sweep(rows: Sequence[tuple[str, float, float, float, str]], *, cut: float) -> Figure:
    """The verdict of each row at every cut in [0, 1].

    ``rows`` holds (label, rho, rho_lo, rho_hi, outcome at ``cut``). An informative row passes at
    cuts above rho_hi (green), fails at cuts below rho_lo (red) and is inconclusive between
    (grey); an uninformative row is pale over the whole range. The chosen cut is a dashed line.
    """
    fig = Figure(figsize=(7.5, 0.32 * len(rows) + 1.0), layout="constrained")
    ax = fig.subplots()
    for k, (label, rho, lo, hi, verdict) in enumerate(rows):
        y = len(rows) - 1 - k
        if verdict == "uninformative":
            ax.barh(y, 1.0, left=0.0, color=OUTCOME_COLOURS["uninformative"], edgecolor="#999999",
                    hatch="//", height=0.7)
            ax.text(0.5, y, "uninformative (ceiling not above floor)", ha="center", va="center", fontsize=6)
            continue
        lo_c, hi_c = float(np.clip(lo, 0, 1)), float(np.clip(hi, 0, 1))
        ax.barh(y, lo_c, left=0.0, color=OUTCOME_COLOURS["fail"], height=0.7)
        ax.barh(y, hi_c - lo_c, left=lo_c, color=OUTCOME_COLOURS["inconclusive"], height=0.7)
        ax.barh(y, 1.0 - hi_c, left=hi_c, color=OUTCOME_COLOURS["pass"], height=0.7)
        if 0 <= rho <= 1:
            ax.plot([rho], [y], marker="|", color="black", markersize=9)
    ax.axvline(cut, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows][::-1], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("cut on rho = (cross - floor) / (ceiling - floor)", fontsize=8)
    handles = [Patch(color=OUTCOME_COLOURS[o], label=f"{o} at this cut")
               for o in ("fail", "inconclusive", "pass")]
    ax.legend(handles=handles, fontsize=6, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    return fig


def cascade_bands(curves: dict[tuple[str, str], dict[str, np.ndarray]], steps: dict[str, Sequence[str]],
                  floors: dict[str, tuple[float, float, float]],
                  ceilings: dict[str, tuple[float, float, float]] | None = None) -> Figure:
    """Cascading randomization: similarity of each step's maps to the trained model's maps and
    between two independent draws of the same step, each a K x 3 array of (mean, lo, hi); the
    method's matched floor (grey) and ceiling (blue) as shaded lines."""
    keys = list(curves)
    methods = list(dict.fromkeys(m for m, _ in keys))
    orders = list(dict.fromkeys(o for _, o in keys))
    fig = Figure(figsize=(7.5, 2.6 * len(methods)), layout="constrained")
    axes = fig.subplots(len(methods), len(orders), squeeze=False, sharey=True)
    for r, meth in enumerate(methods):
        for c, order in enumerate(orders):
            ax = axes[r][c]
            labels = steps[order]
            for name, v in curves[(meth, order)].items():
                xs = np.arange(len(v))
                ok = ~np.isnan(v[:, 0])
                ax.plot(xs[ok], v[ok, 0], marker="o", markersize=3, label=name)
                ax.fill_between(xs[ok], v[ok, 1], v[ok, 2], alpha=0.15)
            f = floors[meth]
            ax.axhspan(f[1], f[2], color="gray", alpha=0.25)
            ax.axhline(f[0], color="gray", linestyle=":", linewidth=1, label="matched floor")
            if ceilings is not None:
                g = ceilings[meth]
                ax.axhspan(g[1], g[2], color="tab:blue", alpha=0.12)
                ax.axhline(g[0], color="tab:blue", linestyle=":", linewidth=1, label="ceiling")
            ax.set_xticks(np.arange(len(labels)), labels, fontsize=6, rotation=30, ha="right")
            ax.set_title(f"{meth}, {order.replace('_', '-')}", fontsize=9)
            if c == 0:
                ax.set_ylabel("Spearman |map|", fontsize=8)
    axes[0][0].legend(fontsize=6)
    return fig


def zone_map(image: np.ndarray, zones: dict[str, np.ndarray], *, title: str = "", width: float = 6.0) -> Figure:
    """Disjoint boolean ``zones`` (name -> H x W mask) colour-coded over a gray ``image`` in [0, 1],
    one qualitative colour per zone, with a legend naming them in order."""
    image = np.asarray(image, np.float64)
    if image.ndim != 2:
        raise ValueError(f"zone_map expects an H x W image, got shape {image.shape}")
    colours = matplotlib.colormaps["tab10"].colors
    if len(zones) > len(colours):
        raise ValueError(f"zone_map draws at most {len(colours)} zones, got {len(zones)}")
    rgba = np.zeros(image.shape + (4,))
    for (name, m), col in zip(zones.items(), colours):
        m = np.asarray(m, bool)
        if m.shape != image.shape:
            raise ValueError(f"zone {name!r} expects shape {image.shape}, got {m.shape}")
        rgba[m] = (*col, 0.45)
    fig = Figure(figsize=(width, width * 0.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.imshow(rgba, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    handles = [Patch(facecolor=(*col, 0.6), edgecolor="none", label=name) for name, col in zip(zones, colours)]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    return fig


def message(text: str, width: float = 6.0) -> Figure:
    """A figure that says in words why there is nothing to draw (e.g. no error to show)."""
    fig = Figure(figsize=(width, 0.8))
    fig.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    return fig
