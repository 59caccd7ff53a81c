"""The trend chart: matches per day as a PNG line chart, one line per series.

Pure except for matplotlib, which is used through its object API (``Figure`` + the Agg canvas): no
pyplot, so no global figure registry to leak into and no GUI backend. The six series with the most
matches get a line each, the rest are summed as "other". The same input gives the same bytes.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

TOP = 6
OTHER = "other"
WIDTH, HEIGHT, DPI = 10, 5, 100  # inches at 100 dpi: 1000×500 px
NO_MATCHES = "No matches in this period"

# Agg and FreeType keep shared font state: one chart at a time, so callers may render in a thread.
_render_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    values: tuple[int, ...]  # one per day

    @property
    def total(self) -> int:
        return sum(self.values)


def day_window(now: datetime, tz: ZoneInfo, days: int) -> tuple[datetime, list[date]]:
    """The start (local midnight ``days - 1`` days ago, in ``tz``) and the local days up to today."""
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    return datetime.combine(first, time(0), tzinfo=tz), [first + timedelta(days=n) for n in range(days)]


def lines(series: Mapping[str, Mapping[date, int]], days: Sequence[date], top: int = TOP) -> list[Line]:
    """The ``top`` series by total (ties by name), then the others summed as "other" if any matched."""
    all_lines = [Line(name, tuple(int(s.get(d, 0)) for d in days)) for name, s in series.items()]
    all_lines.sort(key=lambda line: (-line.total, line.label))
    if len(all_lines) <= top:
        return all_lines
    shown, rest = all_lines[:top], all_lines[top:]
    other = Line(OTHER, tuple(sum(v) for v in zip(*(r.values for r in rest), strict=True)))
    return [*shown, other] if other.total else shown


def period_title(days: Sequence[date]) -> str:
    """``17 Nov – 30 Nov 2026`` for the days of a chart."""
    if not days:
        return ""
    first, last = days[0], days[-1]
    return f"{first:%d %b}" + (f" {first:%Y}" if first.year != last.year else "") + f" – {last:%d %b %Y}"


def totals_text(series: Mapping[str, Mapping[date, int]], days: Sequence[date]) -> str:
    """``rule_a: 12 · rule_b: 3 · other: 1`` (the chart's lines), or that nothing matched."""
    shown = [line for line in lines(series, days) if line.total]
    if not shown:
        return f"{NO_MATCHES}."
    return " · ".join(f"{line.label}: {line.total}" for line in shown)


SPIKE_COLOR = "#f2a900"
SPIKE_MARK = "spike"  # written above each day that had a spike alert (delivery/spikes.py)


def trend_figure(
    series: Mapping[str, Mapping[date, int]], days: Sequence[date], title: str, spikes: Sequence[date] = ()
) -> Figure:
    """The chart as a matplotlib Figure (not registered with pyplot); tests read its lines. Days in
    ``spikes`` (a spike alert was sent) are shaded, with "spike" written at the top."""
    fig = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    ax = fig.add_subplot()
    ax.set_title(title)
    xs = list(range(len(days)))  # day indices; the ticks carry the dates
    for i, day in enumerate(days):
        if day in spikes:  # patches and text, not lines: the legend below lists the lines only
            ax.axvspan(i - 0.5, i + 0.5, color=SPIKE_COLOR, alpha=0.2, linewidth=0, gid="spike")
            ax.text(i, 1.0, SPIKE_MARK, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    drawn = [line for line in lines(series, days) if line.total]
    for line in drawn:
        ax.plot(xs, line.values, marker="o", markersize=3, linewidth=1.8, label=line.label)
    if not drawn:
        ax.plot(xs, [0] * len(xs), color="0.7", linewidth=1)
        ax.text(0.5, 0.5, NO_MATCHES, transform=ax.transAxes, ha="center", va="center", fontsize=16, color="0.4")
    step = max(1, math.ceil(len(days) / 12))
    ticks = xs[::step]
    ax.set_xticks(ticks, labels=[f"{days[i]:%d %b}" for i in ticks])
    ax.set_xlim(-0.5, max(len(days) - 0.5, 0.5))
    ax.set_ylim(bottom=0, top=max([1, *(max(line.values, default=0) for line in drawn)]) * 1.1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("matches per day")
    ax.grid(True, alpha=0.3)
    labels = [f"{line.label} ({line.total})" for line in drawn]
    if labels:  # beside the plot, so it never hides a line
        ax.legend(ax.get_lines(), labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=9)
    right = 0.98 - 0.0068 * max([0, *(len(label) + 6 for label in labels)])  # room for the longest label
    fig.subplots_adjust(left=0.06, right=max(right, 0.6), top=0.92, bottom=0.09)  # fixed: no layout engine
    return fig


def render_trend(
    series: Mapping[str, Mapping[date, int]], days: list[date], title: str, spikes: Sequence[date] = ()
) -> bytes:
    """The chart as PNG bytes (1000×500 px). Deterministic: no software or date in the metadata."""
    with _render_lock:
        fig = trend_figure(series, days, title, spikes)
        try:
            FigureCanvasAgg(fig)  # attaches itself to the figure: Agg, whatever the default backend
            buf = io.BytesIO()
            fig.savefig(buf, format="png", metadata={"Software": None})
            return buf.getvalue()
        finally:
            fig.clear()  # drop the artists now rather than at the next garbage collection
