"""A measure's trend as inline SVG, server-rendered (no script, no outside service).

Every value that reaches the markup is a number or escaped text. The dashed line marks the
baseline and the dotted one the baseline plus the MCID in the better direction: a point past
the dotted line is a clinically important improvement.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from outcomes.selectors import Series

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 90, 14, 34
LINE, BASE, TARGET = "#1d4ed8", "#6b7280", "#15803d"


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span / 2 if count == 1 else span * index / (count - 1))


def _y(value: Decimal, low: Decimal, high: Decimal) -> float:
    value = min(max(value, low), high)
    return TOP + (HEIGHT - TOP - BOTTOM) * float((high - value) / (high - low))


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value:.1f}"


def trend_svg(series: Series) -> SafeString:
    measure = series.measure
    low, high = measure.low, measure.high
    scored = series.scored
    label = f"{measure.short} trend: " + (", ".join(_number(r.score) for r in scored) or "no scores yet")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-label="{escape(label)}" class="outcome-chart" data-measure="{escape(measure.code)}" '
        'font-size="11" font-family="sans-serif">'
    ]
    for step in range(5):
        value = low + (high - low) * step / 4
        y = _y(value, low, high)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 3:.1f}" text-anchor="end" fill="#6b7280">{_number(value)}</text>')
    better = "higher is better" if measure.higher_is_better else "lower is better"
    parts.append(f'<text x="{LEFT}" y="{TOP - 3}" fill="#374151">{escape(measure.short)} ({better})</text>')
    if not scored:
        parts.append(f'<text x="{(WIDTH - RIGHT) / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#6b7280">'
                     "No scores yet</text>")  # fmt: skip
    else:
        baseline = scored[0].score
        target = baseline + measure.mcid if measure.higher_is_better else baseline - measure.mcid
        y_base = _y(baseline, low, high)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y_base:.1f}" y2="{y_base:.1f}" stroke="{BASE}" '
            'stroke-dasharray="6 4" class="baseline"/>'
            f'<text x="{WIDTH - RIGHT + 4}" y="{y_base + 3:.1f}" fill="{BASE}">baseline</text>'
        )
        if low <= target <= high:
            y_target = _y(target, low, high)
            parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y_target:.1f}" y2="{y_target:.1f}" stroke="{TARGET}" '
                'stroke-dasharray="2 3" class="mcid"/>'
                f'<text x="{WIDTH - RIGHT + 4}" y="{y_target + 3:.1f}" fill="{TARGET}">MCID '
                f"({_number(measure.mcid)})</text>"
            )
        coords = [(_x(i, len(scored)), _y(r.score, low, high)) for i, r in enumerate(scored)]
        if len(coords) > 1:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline fill="none" stroke="{LINE}" stroke-width="2" points="{points}"/>')
        step = max(1, len(scored) // 6)
        for index, ((x, y), response) in enumerate(zip(coords, scored, strict=True)):
            when = f"{response.recorded_on:%b %d %Y}"
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{LINE}" class="score">'
                f"<title>{escape(when)}: {escape(measure.short)} {_number(response.score)}</title></circle>"
                f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" fill="{LINE}">{_number(response.score)}</text>'
            )
            if index % step == 0 or index == len(scored) - 1:
                parts.append(
                    f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" fill="#374151">'
                    f"{escape(f'{response.recorded_on:%b %d}')}</text>"
                )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only
