"""OverlayPlot: several runs' curves drawn on one plot, with a y axis, an x axis and a legend."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import var
from textual.widget import Widget

from tui_trainer.session import format as fmt
from tui_trainer.ui.widgets.spark_plot import use_log_scale

NONE = -1  # a cell no series touches (or an axis cell)
SHARED = -2  # a cell where two or more series fall: drawn with the dots of all of them, in one neutral colour
COLOURS = ("bright_cyan", "bright_magenta", "bright_yellow", "bright_green", "bright_red", "bright_blue")
SHARED_COLOUR = "bold white"
LEGEND_MARK = "●"
_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # braille dot (row, column) -> bit


@dataclass(frozen=True, slots=True)
class Overlay:
    """A drawn plot: its text rows (y labels, plot cells, the x axis last) and, per character, which
    series drew it (a series index, NONE or SHARED)."""

    rows: tuple[str, ...]
    owners: tuple[tuple[int, ...], ...]
    gutter: int  # columns of y labels and the axis line left of the plot cells
    bounds: tuple[float, float] | None  # the shared y range (real values)
    log: bool
    x_range: tuple[float, float] | None


def step_label(x: float) -> str:
    """An x tick on a step axis: the step, grouped (12,000)."""
    return f"{round(x):,}"


def time_label(x: float) -> str:
    """An x tick on a wall-time axis: a duration (0s, 0.04s, 0.9s, 12s, 3m05s, 1h02m)."""
    if x == 0:
        return "0s"
    return f"{x:.2f}s" if x < 0.995 else fmt.window(x)


def overlay_plot(series: Sequence[tuple[Sequence[float], Sequence[float]] | None], width: int, height: int,
                 x_label: Callable[[float], str] = step_label, log: bool | None = None) -> Overlay:
    """Draw every series, (xs, ys) each, on one plot `width` x `height` cells (the x axis row included).

    All series share one y range (their finite values' min and max) and one x range (0 to the largest x).
    `log=None` picks a log scale when that range spans more than a factor of 10 (`use_log_scale`).
    Each cell holds a braille character (2 x 4 dots), so a curve is drawn at twice the columns and four
    times the rows; consecutive points are joined. The cell of each series' last point holds its letter
    (A, B, ...), so the curves can be told apart without colour (NO_COLOR, a monochrome terminal). A cell where several series fall shows the dots of
    all of them and is owned by SHARED. A series may be None or empty (a run left out): it draws nothing.
    The y axis is labelled with the real values at the top, middle and bottom rows; the x axis with
    `x_label` of its start, middle and end.
    """
    points = [[(x, y) for x, y in zip(*s) if math.isfinite(x) and math.isfinite(y)] if s else []
              for s in series]
    values = [y for p in points for _, y in p]
    bounds = (min(values), max(values)) if values else None
    if log is None:
        log = bounds is not None and use_log_scale(bounds)
    x_range = (min(0.0, *(x for p in points for x, _ in p)), max(x for p in points for x, _ in p)) if values else None
    plot_height = max(height - 1, 0)
    ticks = _y_ticks(bounds, plot_height, log) if bounds is not None else {}
    gutter = max((len(label) for label in ticks.values()), default=0) + 1
    plot_width = max(width - gutter, 0)
    if plot_height == 0 or plot_width == 0:
        return Overlay((), (), gutter, bounds, log, x_range)

    def scale_y(y: float) -> float:
        return math.log10(y) if log else y

    bits = [[dict() for _ in range(plot_width)] for _ in range(plot_height)]  # series index -> dot bits
    ends: dict[tuple[int, int], list[int]] = {}  # (row, column) of a series' last point -> the series ending there
    if bounds is not None:
        lo, hi = scale_y(bounds[0]), scale_y(bounds[1])
        x0, x1 = x_range
        columns, rows = 2 * plot_width, 4 * plot_height
        for index, p in enumerate(points):
            dots = [(_place(x, x0, x1, columns), rows - 1 - _place(scale_y(y), lo, hi, rows)) for x, y in p
                    if not log or y > 0]
            for (ca, ra), (cb, rb) in zip(dots, dots[1:] or dots):
                for c, r in _line(ca, ra, cb, rb):
                    cell = bits[r // 4][c // 2]
                    cell[index] = cell.get(index, 0) | _DOT_BITS[r % 4][c % 2]
            if dots:
                ends.setdefault((dots[-1][1] // 4, dots[-1][0] // 2), []).append(index)

    out_rows, out_owners = [], []
    for r in range(plot_height):
        label = ticks.get(r)
        prefix = (label or "").rjust(gutter - 1) + ("┤" if label is not None else "│")
        chars, owners = [], []
        for column, cell in enumerate(bits[r]):
            ending = ends.get((r, column))
            if ending:  # each curve ends in its run's letter: told apart without colour too
                chars.append(series_letter(ending[-1]))
                owners.append(ending[0] if len(ending) == 1 else SHARED)
                continue
            if not cell:
                chars.append(" ")
                owners.append(NONE)
                continue
            mask = 0
            for m in cell.values():
                mask |= m
            chars.append(chr(0x2800 + mask))
            owners.append(next(iter(cell)) if len(cell) == 1 else SHARED)
        out_rows.append(prefix + "".join(chars))
        out_owners.append((NONE,) * gutter + tuple(owners))
    out_rows.append(" " * (gutter - 1) + "└" + _x_axis(x_range, plot_width, x_label))
    out_owners.append((NONE,) * (gutter + plot_width))
    return Overlay(tuple(out_rows), tuple(out_owners), gutter, bounds, log, x_range)


def series_letter(index: int) -> str:
    """The letter of the series at `index` (A, B, C...), as the legend names its run."""
    return chr(ord("A") + index % 26)


def _place(value: float, low: float, high: float, cells: int) -> int:
    """The dot (0..cells-1) a value falls on between low and high."""
    if high <= low:
        return 0
    return min(max(round((value - low) / (high - low) * (cells - 1)), 0), cells - 1)


def _line(c0: int, r0: int, c1: int, r1: int):
    """The dots from one point to the next (Bresenham), so a curve reads as a line, not as dust."""
    dc, dr = abs(c1 - c0), -abs(r1 - r0)
    sc, sr = (1 if c0 < c1 else -1), (1 if r0 < r1 else -1)
    err = dc + dr
    while True:
        yield c0, r0
        if c0 == c1 and r0 == r1:
            return
        e2 = 2 * err
        if e2 >= dr:
            err += dr
            c0 += sc
        if e2 <= dc:
            err += dc
            r0 += sr


def _y_ticks(bounds: tuple[float, float], rows: int, log: bool) -> dict[int, str]:
    """Row (0 = top) -> the real value it stands for: the maximum, the middle row's value, the minimum."""
    if rows <= 0:
        return {}
    lo, hi = bounds
    if rows == 1:
        return {0: fmt.number(hi, 3)}
    ticks = {0: hi, rows - 1: lo}
    if rows >= 3:
        middle = rows // 2
        dots = 4 * rows
        fraction = (dots - 1 - (4 * middle + 1.5)) / (dots - 1)  # the middle row's centre, from the bottom
        if log:
            ticks[middle] = 10 ** (math.log10(lo) + fraction * (math.log10(hi) - math.log10(lo)))
        else:
            ticks[middle] = lo + fraction * (hi - lo)
    return {row: fmt.number(value, 3) for row, value in ticks.items()}


def _x_axis(x_range: tuple[float, float] | None, width: int, label: Callable[[float], str]) -> str:
    """The x axis line, `width` cells, with the start, middle and end labels written into it."""
    if width <= 0:
        return ""
    line = ["─"] * width
    if x_range is None:
        return "".join(line)
    x0, x1 = x_range
    start, middle, end = label(x0), label((x0 + x1) / 2), label(x1)
    placed = [(0, start), (width - len(end), end)]
    at = (width - len(middle)) // 2
    if at > len(start) + 1 and at + len(middle) < width - len(end) - 1:
        placed.append((at, middle))
    for at, text in placed:
        for i, ch in enumerate(text):
            if 0 <= at + i < width:
                line[at + i] = ch
    return "".join(line)


@dataclass(frozen=True, slots=True)
class OverlaySeries:
    """One run's curve on an overlay plot: its legend label and its points."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class OverlayData:
    """Everything an OverlayPlot draws. A None series (a run left out) keeps its colour for the others."""

    title: str
    series: tuple[OverlaySeries | None, ...]
    x_axis: str = "step"  # "step" or "wall time"
    legend: bool = True
    notes: tuple[str, ...] = ()  # e.g. "no wall times recorded for run B"


def series_style(index: int) -> str:
    """The colour of the series at `index` (the same run has the same colour on every plot)."""
    return SHARED_COLOUR if index == SHARED else COLOURS[index % len(COLOURS)]


class OverlayPlot(Widget):
    """Several runs' curves on one plot with axes and a legend; assign `data` to redraw.

    Why not a plotting library (textual-plotext): the app keeps to its own dependencies and draws
    all its plots from pure functions tested without an app (`overlay_plot` here, `plot_rows` for the
    sparklines); this one adds a shared y range over all runs, a log scale labelled in real values, and a
    step or wall-time x axis.
    """

    DEFAULT_CSS = """
    OverlayPlot {
        height: 1fr;
        min-height: 4;
    }
    """

    data: var[OverlayData | None] = var(None)
    drawn: Overlay | None = None  # the plot as last rendered (which series drew which cell)

    def watch_data(self) -> None:
        self.refresh()

    def header(self) -> list[Text]:
        """The lines above the plot: the title (with the x axis and the scale), the notes, the legend."""
        data = self.data
        if data is None:
            return [Text("reading metrics...", "dim")]
        drawn = [s for s in data.series if s is not None]
        ys = [y for s in drawn for y in s.ys if math.isfinite(y)]
        log = bool(ys) and use_log_scale((min(ys), max(ys)))
        axis = "wall time from the first step" if data.x_axis == "wall time" else data.x_axis
        lines = [Text(f"{data.title} · x: {axis}" + (" · log scale" if log else ""), "bold")]
        if not ys:
            lines[0].append("  (no values recorded)", "dim")
        lines += [Text(note, "yellow") for note in data.notes]
        if data.legend:  # as many entries a line as fit (two runs with short ids share one line)
            entries = []
            for index, s in enumerate(data.series):
                if s is not None:
                    entry = Text(f"{LEGEND_MARK} ", series_style(index))
                    entry.append(s.label)
                    entries.append(entry)
            width = self.size.width or 80
            for entry in entries:
                if len(lines) > 1 + len(data.notes) and len(lines[-1]) + 3 + len(entry) <= width:
                    lines[-1].append("   ")
                    lines[-1].append_text(entry)
                else:
                    lines.append(entry)
        width = self.size.width or 80
        for line in lines:  # one row each: a wrapped title would push the x axis off a small plot
            line.truncate(width, overflow="ellipsis")
        return lines

    def render(self) -> Text:
        width, height = self.size
        lines = self.header()
        data = self.data
        if data is None or height - len(lines) < 2:
            return Text("\n").join(lines)
        label = time_label if data.x_axis == "wall time" else step_label
        plot = overlay_plot([(s.xs, s.ys) if s is not None else None for s in data.series], width,
                            height - len(lines), label)
        self.drawn = plot
        for row, owners in zip(plot.rows, plot.owners):
            line = Text(no_wrap=True, overflow="crop")
            run_start = 0
            for i in range(1, len(row) + 1):
                if i == len(row) or owners[i] != owners[run_start]:
                    owner = owners[run_start]
                    line.append(row[run_start:i], series_style(owner) if owner != NONE else "")
                    run_start = i
            lines.append(line)
        return Text("\n", no_wrap=True, overflow="crop").join(lines)
