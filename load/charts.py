"""Inline SVG charts for the load report: pure functions from numbers to an ``<svg>`` string.

No JavaScript, no external resources, no plotting library: report.html must open offline, years
later, from an archived results folder. Every text that reaches the SVG is escaped here, so callers
may pass labels taken straight from run.json (a target URL, an error message).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# Colour-blind-safe-ish (Okabe–Ito, then a few darker extras); readable on white.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#555555", "#8c564b", "#7b3294")
BAND_FILL = ("#eef2f7", "#f8f4ea")
CHAR_W = 6.2          # rough width of one 11-px sans-serif character, for layout only
FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif" font-size="11"'

Point = tuple[float, float]


@dataclass(frozen=True)
class Series:
    """One line: ``points`` (x, y); ``labels`` optionally names each point on the chart."""

    label: str
    points: Sequence[Point]
    color: str | None = None
    dashed: bool = False
    labels: Sequence[str] = field(default_factory=tuple)
    step: bool = False          # draw as a staircase (a CDF)


@dataclass(frozen=True)
class Band:
    """A shaded x range (a stage) with its label."""

    x0: float
    x1: float
    label: str


@dataclass(frozen=True)
class Bar:
    """One request on a timeline: seconds since the run's start; ``first``/``last`` None when no token came."""

    send: float
    first: float | None
    last: float | None
    done: float
    ok: bool
    color: str = PALETTE[0]


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def tick_label(v: float) -> str:
    """Short tick text: 1.5k, 2M, 0.05; no float noise."""
    a = abs(v)
    if a >= 1e6:
        return f"{round(v / 1e6, 6):g}M"
    if a >= 1e4:
        return f"{round(v / 1e3, 6):g}k"
    return f"{round(v, 6):g}"


class Axis:
    """A linear or log10 range with 'nice' ticks; ``frac`` maps a value to 0..1."""

    def __init__(self, values: Sequence[float], *, log: bool = False, zero: bool = False, tight: bool = False,
                 n: int = 5):
        finite = [v for v in values if math.isfinite(v)]
        self.log = log and any(v > 0 for v in finite)
        if self.log:
            pos = [v for v in finite if v > 0]
            self.lo, self.hi = min(pos) / 1.25, max(pos) * 1.25
            lo, hi = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            nice = [m * 10.0 ** k for k in range(lo, hi + 1) for m in (1, 2, 5)]
            self.ticks = [t for t in nice if self.lo <= t <= self.hi]
            if len(self.ticks) > 8:
                self.ticks = [t for t in self.ticks if f"{t:e}".startswith("1")]
            return
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        if zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi == lo:
            pad = abs(lo) * 0.1 or 1.0
            lo, hi = (lo - pad, hi + pad) if not (zero and lo == 0) else (0.0, pad)
        raw = (hi - lo) / n
        mag = 10.0 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        # tight: the range is the data's (a time axis ends when the run did); else widened to ticks
        self.lo, self.hi = (lo, hi) if tight else (math.floor(lo / step) * step, math.ceil(hi / step) * step)
        self.ticks = [i * step for i in range(first, last + 1)] if tight else [
            self.lo + i * step for i in range(round((self.hi - self.lo) / step) + 1)]

    def frac(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo)
            return (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return (v - self.lo) / (self.hi - self.lo)


class Frame:
    """Plot area geometry, axes, grid, title and legend; charts draw their marks inside it."""

    def __init__(self, title: str, x: Axis, y: Axis | None, *, x_label: str, y_label: str,
                 legend: Sequence[tuple[str, str, bool]] = (), width: int = 520, height: int = 280):
        self.title, self.x, self.y, self.x_label, self.y_label = title, x, y, x_label, y_label
        self.width = width
        self.left, self.right, self.top = 58, 14, 26
        self.legend = _legend_layout(legend, width - self.left - self.right)
        rows = (max(r for r, _, _ in self.legend) + 1) if self.legend else 0
        self.plot_h = height - self.top - 40
        self.height = height + rows * 16
        self.plot_w = width - self.left - self.right

    def px(self, v: float) -> float:
        return self.left + self.x.frac(v) * self.plot_w

    def py(self, v: float) -> float:
        assert self.y is not None
        return self.top + (1.0 - self.y.frac(v)) * self.plot_h

    def open(self) -> list[str]:
        bottom = self.top + self.plot_h
        out = [f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
               f'height="{self.height}" role="img" {FONT}>',
               f"<title>{esc(self.title)}</title>",
               f'<text x="{self.left}" y="16" font-size="13" font-weight="600">{esc(self.title)}</text>',
               f'<rect x="{self.left}" y="{self.top}" width="{self.plot_w}" height="{self.plot_h}" '
               'fill="none" stroke="#bbb"/>']
        for t in self.x.ticks:
            x = self.px(t)
            out.append(f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{bottom}" stroke="#eee"/>')
            out.append(f'<text x="{x:.1f}" y="{bottom + 14}" text-anchor="middle">{esc(tick_label(t))}</text>')
        if self.y is not None:
            for t in self.y.ticks:
                y = self.py(t)
                out.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.left + self.plot_w}" y2="{y:.1f}" '
                           'stroke="#eee"/>')
                out.append(f'<text x="{self.left - 5}" y="{y + 4:.1f}" text-anchor="end">{esc(tick_label(t))}</text>')
        out.append(f'<text x="{self.left + self.plot_w / 2:.1f}" y="{bottom + 30}" text-anchor="middle" '
                   f'fill="#333">{esc(self.x_label)}</text>')
        cy = self.top + self.plot_h / 2
        out.append(f'<text x="13" y="{cy:.1f}" text-anchor="middle" fill="#333" '
                   f'transform="rotate(-90 13 {cy:.1f})">{esc(self.y_label)}</text>')
        return out

    def bands(self, bands: Sequence[Band]) -> list[str]:
        out = []
        bottom = self.top + self.plot_h
        for i, b in enumerate(bands):
            x0, x1 = self.px(max(b.x0, self.x.lo)), self.px(min(b.x1, self.x.hi))
            if x1 <= x0:
                continue
            out.append(f'<rect x="{x0:.1f}" y="{self.top}" width="{x1 - x0:.1f}" height="{self.plot_h}" '
                       f'fill="{BAND_FILL[i % 2]}"/>')
            out.append(f'<line x1="{x0:.1f}" y1="{self.top}" x2="{x0:.1f}" y2="{bottom}" stroke="#c8d0da" '
                       'stroke-dasharray="2 2"/>')
            if len(b.label) * CHAR_W * 0.9 < x1 - x0 - 4:
                out.append(f'<text x="{x0 + 3:.1f}" y="{self.top + 11}" font-size="10" fill="#667">'
                           f"{esc(b.label)}</text>")
        return out

    def close(self) -> list[str]:
        base = self.top + self.plot_h + 44
        out = []
        for row, x, (label, col, dashed) in self.legend:
            y = base + row * 16
            dash = ' stroke-dasharray="5 3"' if dashed else ""
            out.append(f'<line x1="{self.left + x}" y1="{y}" x2="{self.left + x + 16}" y2="{y}" stroke="{col}" '
                       f'stroke-width="2.5"{dash}/>')
            out.append(f'<text x="{self.left + x + 20}" y="{y + 4}">{esc(label)}</text>')
        out.append("</svg>")
        return out


def _legend_layout(items: Sequence[tuple[str, str, bool]], width: float) -> list[tuple[int, float, tuple]]:
    out, row, x = [], 0, 0.0
    for item in items:
        w = 28 + len(item[0]) * CHAR_W
        if x and x + w > width:
            row, x = row + 1, 0.0
        out.append((row, x, item))
        x += w
    return out


def no_data(title: str, note: str = "no data", width: int = 520, height: int = 120) -> str:
    """The placeholder a chart becomes when there is nothing to draw (a stage with only errors)."""
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" {FONT}>'
            f"<title>{esc(title)}: {esc(note)}</title>"
            f'<text x="10" y="16" font-size="13" font-weight="600">{esc(title)}</text>'
            f'<rect x="10" y="26" width="{width - 20}" height="{height - 36}" fill="#fafafa" stroke="#ccc" '
            f'stroke-dasharray="4 3"/><text x="{width / 2}" y="{height / 2 + 14}" text-anchor="middle" '
            f'fill="#888">{esc(note)}</text></svg>')


def _finite(points: Sequence[Point]) -> list[Point]:
    return [(x, y) for x, y in points if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str, log_x: bool = False,
               log_y: bool = False, y_zero: bool = True, bands: Sequence[Band] = (), x_range: Point | None = None,
               x_ticks: Sequence[float] = (), tight_x: bool = False, width: int = 520, height: int = 280) -> str:
    """Several series against a numeric x; points get markers when there are few of them.
    ``x_ticks`` replaces the automatic ticks (the load levels themselves read better than 1-2-5)."""
    clean = [(s, _finite(s.points)) for s in series]
    clean = [(s, p) for s, p in clean if p]
    if not clean:
        return no_data(title, width=width)
    xs = [x for _, p in clean for x, _ in p] + ([*x_range] if x_range else [])
    ys = [y for _, p in clean for _, y in p]
    frame = Frame(title, Axis(xs, log=log_x, tight=tight_x), Axis(ys, log=log_y, zero=y_zero and not log_y),
                  x_label=x_label, y_label=y_label, width=width, height=height,
                  legend=[(s.label, s.color or color(i), s.dashed) for i, (s, _) in enumerate(clean) if s.label])
    if x_ticks:
        frame.x.ticks = [t for t in x_ticks if frame.x.lo <= t <= frame.x.hi]
    out = frame.open() + frame.bands(bands)
    for i, (s, pts) in enumerate(clean):
        col = s.color or color(i)
        coords = [(frame.px(x), frame.py(y)) for x, y in pts]
        if s.step:
            stairs = [coords[0]]
            for (_, y0), (x1, y1) in zip(coords, coords[1:]):
                stairs += [(x1, y0), (x1, y1)]
            coords = stairs
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="{col}" stroke-width="1.8"{dash}/>')
        if len(pts) <= 16 and not s.step:
            out += [f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="2.8" fill="{col}"/>' for x, y in pts]
        for (x, y), text in zip(pts, s.labels):
            end = frame.x.frac(x) > 0.7  # keep labels near the right edge inside the plot
            anchor = ' text-anchor="end"' if end else ""
            out.append(f'<text x="{frame.px(x) + (-5 if end else 5):.1f}" y="{frame.py(y) - 5:.1f}" font-size="10" '
                       f'fill="{col}"{anchor}>{esc(text)}</text>')
    return "\n".join(out + frame.close())


def ecdf(samples: Sequence[float], max_points: int = 300) -> list[Point]:
    """(value, fraction <= value) at up to ``max_points`` evenly spaced ranks, min and max included."""
    values = sorted(v for v in samples if v is not None and math.isfinite(v))
    n = len(values)
    if not n:
        return []
    if n <= max_points:
        ranks = range(n)
    else:
        ranks = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    return [(values[i], (i + 1) / n) for i in ranks]


def cdf_chart(samples: Sequence[tuple[str, Sequence[float]]], *, title: str, x_label: str, log_x: bool = False,
              width: int = 520, height: int = 280) -> str:
    """Empirical CDFs of raw samples, one staircase per (label, samples)."""
    series = [Series(f"{label} (n={len(v):,})", ecdf(v), step=True) for label, v in samples]
    return line_chart([s for s in series if s.points], title=title, x_label=x_label, y_label="fraction ≤ x",
                      log_x=log_x, width=width, height=height)


def bar_chart(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, title: str,
              y_label: str, x_label: str = "", width: int = 520, height: int = 260) -> str:
    """Grouped columns: one group per category, one column per series; None leaves a gap."""
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    if not categories or not values:
        return no_data(title, width=width)
    n = len(categories)
    x = Axis([0.0, float(n)])
    x.lo, x.hi, x.ticks = 0.0, float(n), []
    frame = Frame(title, x, Axis(values, zero=True), x_label=x_label, y_label=y_label, width=width,
                  height=height, legend=[(label, color(i), False) for i, (label, _) in enumerate(series)])
    out = frame.open()
    group_w = frame.plot_w / n
    col_w = group_w * 0.8 / max(1, len(series))
    zero_y = frame.py(max(0.0, frame.y.lo))
    for c, cat in enumerate(categories):
        gx = frame.left + c * group_w + group_w * 0.1
        for i, (_, vs) in enumerate(series):
            v = vs[c] if c < len(vs) else None
            if v is None or not math.isfinite(v):
                continue
            y = frame.py(v)
            out.append(f'<rect x="{gx + i * col_w:.1f}" y="{min(y, zero_y):.1f}" width="{max(col_w - 1, 1):.1f}" '
                       f'height="{abs(zero_y - y):.1f}" fill="{color(i)}"><title>{esc(cat)}: '
                       f"{esc(tick_label(v))}</title></rect>")
        text = cat if len(cat) * CHAR_W <= group_w else cat[: max(1, int(group_w / CHAR_W) - 1)] + "…"
        out.append(f'<text x="{frame.left + (c + 0.5) * group_w:.1f}" y="{frame.top + frame.plot_h + 14}" '
                   f'text-anchor="middle">{esc(text)}</text>')
    return "\n".join(out + frame.close())


def time_chart(series: Sequence[Series], bands: Sequence[Band], *, title: str, y_label: str,
               x_label: str = "seconds since start", width: int = 520, height: int = 240) -> str:
    """A time series over the whole run with each stage shaded and named."""
    span = (min(b.x0 for b in bands), max(b.x1 for b in bands)) if bands else None
    return line_chart(series, title=title, x_label=x_label, y_label=y_label, bands=bands, x_range=span,
                      tight_x=True, width=width, height=height)


def timeline_chart(bars: Sequence[Bar], bands: Sequence[Band], *, title: str, width: int = 1060,
                   height: int = 360) -> str:
    """One thin horizontal bar per request: grey while waiting for the first token, coloured while
    streaming, red for an error; rows in send order."""
    if not bars:
        return no_data(title, width=width)
    xs = [b.send for b in bars] + [b.done for b in bars] + [v for b in bands for v in (b.x0, b.x1)]
    frame = Frame(title, Axis(xs, tight=True), None, x_label="seconds since start", y_label="requests (send order)",
                  width=width, height=height,
                  legend=[("waiting for first token", "#b8b8b8", False), ("streaming (colour = stage)", PALETTE[0], False),
                          ("error", "#d7191c", False)])
    out = frame.open() + frame.bands(bands)
    row_h = frame.plot_h / len(bars)
    thick = max(0.6, min(row_h * 0.8, 8.0))

    def seg(x0: float, x1: float, y: float, fill: str, least: float = 0.8) -> str:
        a, b = frame.px(x0), frame.px(x1)
        return (f'<rect x="{a:.1f}" y="{y:.1f}" width="{max(b - a, least):.1f}" height="{thick:.2f}" '
                f'fill="{fill}"/>')

    for i, b in enumerate(bars):
        y = frame.top + i * row_h + (row_h - thick) / 2
        if not b.ok:
            out.append(seg(b.send, b.done, y, "#d7191c", least=3.0))  # fast failures must still show
            continue
        first = b.first if b.first is not None else b.done
        out.append(seg(b.send, first, y, "#b8b8b8"))
        out.append(seg(first, b.last if b.last is not None else b.done, y, b.color))
    return "\n".join(out + frame.close())
