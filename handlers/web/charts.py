"""Charts for the dashboard as server-rendered inline SVG: no JavaScript, no inline
style (the CSP allows none), colours from the stylesheet's classes. Every chart sits
next to a table with the same numbers (the accessible fallback), so the SVG is
``role="img"`` with a short label and a ``<title>`` per mark for hover."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 600, 180, 36, 22, 8


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _axis(top: float, unit: str) -> str:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    return (
        f'<line class="axis" x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" '
        f'y2="{HEIGHT - PAD_BOTTOM}"/>'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" '
        f'y2="{HEIGHT - PAD_BOTTOM}"/>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end">{escape(_fmt(top))}</text>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + plot_h}" text-anchor="end">0</text>'
        f'<text x="{PAD_LEFT + 2}" y="{PAD_TOP + 8}">{escape(unit)}</text>'
    )


def _x_labels(labels: Sequence[str], step: float) -> str:
    if not labels:
        return ""
    picks = sorted({0, len(labels) // 2, len(labels) - 1})
    return "".join(
        f'<text x="{PAD_LEFT + step * (i + 0.5):.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(labels[i])}</text>"
        for i in picks
    )


def bar_chart(points: Sequence[tuple[str, float]], *, label: str, unit: str = "") -> Markup:
    """Vertical bars, one per ``(label, value)``."""
    top = max([v for _l, v in points] + [1.0])
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(1, len(points))
    bars = []
    for i, (name, value) in enumerate(points):
        h = plot_h * value / top
        bars.append(
            f'<rect class="series" x="{PAD_LEFT + step * i + step * 0.1:.1f}" '
            f'y="{PAD_TOP + plot_h - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}">'
            f"<title>{escape(name)}: {escape(_fmt(value))}</title></rect>"
        )
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
        f"{_axis(top, unit)}{''.join(bars)}{_x_labels([n for n, _v in points], step)}</svg>"
    )


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    label: str,
    unit: str = "",
) -> Markup:
    """One polyline per series (``None`` values leave a gap); up to two series styled."""
    values = [v for _n, vs in series for v in vs if v is not None]
    top = max(values + [1.0])
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(1, len(labels))
    marks = []
    for index, (name, points) in enumerate(series):
        css = "line" if index == 0 else "line2"
        run: list[str] = []
        runs: list[list[str]] = []
        for i, value in enumerate(points):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            x, y = PAD_LEFT + step * (i + 0.5), PAD_TOP + plot_h - plot_h * value / top
            run.append(f"{x:.1f},{y:.1f}")
            marks.append(
                f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                f"<title>{escape(name)} {escape(labels[i])}: {escape(_fmt(value))} {escape(unit)}"
                "</title></circle>"
            )
        if run:
            runs.append(run)
        for points_run in runs:
            marks.insert(0, f'<polyline class="{css}" points="{" ".join(points_run)}"/>')
    legend = "".join(
        f'<text class="legend-{"line" if i == 0 else "line2"}" x="{WIDTH - 120 + 60 * i}" '
        f'y="{PAD_TOP + 8}">{escape(name)}</text>'
        for i, (name, _v) in enumerate(series)
    )
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
        f"{_axis(top, unit)}{''.join(marks)}{legend}{_x_labels(labels, step)}</svg>"
    )


def heatmap(grid: Sequence[Sequence[int]], rows: Sequence[str], *, label: str) -> Markup:
    """Rows × 24 hours; the cell class ``heat-0``..``heat-4`` says how busy it is."""
    top = max([v for row in grid for v in row] + [1])
    cell_w, cell_h, left, head = 22, 18, 36, 14
    width, height = left + 24 * cell_w, head + len(rows) * cell_h
    cells = []
    for r, name in enumerate(rows):
        cells.append(
            f'<text x="{left - 4}" y="{head + r * cell_h + 13}" text-anchor="end">{escape(name)}</text>'
        )
        for hour, value in enumerate(grid[r]):
            level = 0 if value == 0 else 1 + min(3, int(3.999 * value / top))
            cells.append(
                f'<rect class="heat-{level}" x="{left + hour * cell_w}" y="{head + r * cell_h}" '
                f'width="{cell_w - 2}" height="{cell_h - 2}"><title>{escape(name)} '
                f"{hour:02d}:00 UTC: {value}</title></rect>"
            )
    hours = "".join(
        f'<text x="{left + h * cell_w + 10}" y="10" text-anchor="middle">{h:02d}</text>'
        for h in range(0, 24, 3)
    )
    return Markup(  # noqa: S704 - every text in it went through escape()
        f'<svg class="chart heat" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f"{hours}{''.join(cells)}</svg>"
    )
