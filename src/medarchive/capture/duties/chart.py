"""Geometry of the completeness chart: one horizontal stacked bar per department, drawn as inline SVG
by the template (no script, no CDN; the numbers are also in the table next to it). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from medarchive.capture.duties.rules import Completeness, Status

# Drawn in this order, left to right: what is done first, what is wrong last but one, what is open last.
ORDER = (Status.ON_TIME, Status.LATE, Status.MISSING, Status.PENDING)
LABEL_WIDTH = 180
BAR_WIDTH = 560
ROW_HEIGHT = 44
BAR_HEIGHT = 28
TOP = 8


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    x: float
    width: float


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    text_y: int
    expected: int
    percent: int | None
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]


def build(rows: list[tuple[str, Completeness]]) -> Chart:
    """Bars scaled to the largest department, so sizes compare across departments."""
    largest = max((counts.expected for _, counts in rows), default=0) or 1
    bars = []
    for index, (label, counts) in enumerate(rows):
        y = TOP + index * ROW_HEIGHT
        x = float(LABEL_WIDTH)
        segments = []
        for status in ORDER:
            count = getattr(counts, status.value)
            if count == 0:
                continue
            width = BAR_WIDTH * count / largest
            segments.append(Segment(status.value, count, round(x, 1), round(width, 1)))
            x += width
        bars.append(Bar(label, y, y + BAR_HEIGHT // 2 + 6, counts.expected, counts.percent, segments))
    return Chart(
        width=LABEL_WIDTH + BAR_WIDTH + 80,
        height=TOP * 2 + max(len(rows), 1) * ROW_HEIGHT,
        label_width=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        bars=bars,
    )
