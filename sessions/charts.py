"""The pain trend chart: pain before and after each session, as inline SVG.

Server-rendered so the admin needs no JavaScript or outside service; every value that
reaches the markup is a number or escaped text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 36, 12, 14, 40
BEFORE_COLOUR, AFTER_COLOUR = "#b91c1c", "#15803d"


@dataclass(frozen=True)
class PainPoint:
    label: str
    before: int | None
    after: int | None


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span / 2 if count == 1 else span * index / (count - 1))


def _y(value: int) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (10 - value) / 10


def _series(points: Sequence[PainPoint], attr: str, colour: str, name: str) -> list[str]:
    coords = [(_x(i, len(points)), _y(getattr(p, attr))) for i, p in enumerate(points) if getattr(p, attr) is not None]
    parts = []
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
    for (x, y), point in zip(
        coords, [p for p in points if getattr(p, attr) is not None], strict=True
    ):  # fmt: skip
        value = getattr(point, attr)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
            f"<title>{escape(point.label)}: {name} {value}/10</title></circle>"
        )
    return parts


def pain_chart_svg(points: Sequence[PainPoint]) -> SafeString:
    """A line chart of pain (0-10) before and after each session, oldest on the left."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'role="img" aria-label="Pain before and after each session" class="pain-chart" font-size="10" '
        'font-family="sans-serif">'
    ]
    for value in range(0, 11, 2):
        y = _y(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 3:.1f}" text-anchor="end" fill="#6b7280">{value}</text>')
    if not points:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#6b7280">No pain scores yet</text>'
        )
    step = max(1, len(points) // 8)  # at most about eight date labels
    for index, point in enumerate(points):
        if index % step == 0 or index == len(points) - 1:
            x = _x(index, len(points))
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" fill="#374151">'
                f"{escape(point.label)}</text>"
            )
    parts += _series(points, "before", BEFORE_COLOUR, "before")
    parts += _series(points, "after", AFTER_COLOUR, "after")
    legend_y = HEIGHT - 8
    parts.append(f'<rect x="{LEFT}" y="{legend_y - 8}" width="10" height="10" fill="{BEFORE_COLOUR}"/>')
    parts.append(f'<text x="{LEFT + 14}" y="{legend_y}">Pain before</text>')
    parts.append(f'<rect x="{LEFT + 90}" y="{legend_y - 8}" width="10" height="10" fill="{AFTER_COLOUR}"/>')
    parts.append(f'<text x="{LEFT + 104}" y="{legend_y}">Pain after</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  # nosec B308 B703 - numbers and escaped labels only
