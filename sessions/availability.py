"""Reads for booking: working windows, the working-hours check and the free-slot search.

Working hours and exceptions are wall-clock times in the clinic's time zone. They are
turned into UTC instants date by date (so a 09:00 start stays 09:00 local across a
daylight-saving change) and every comparison afterwards is between UTC instants: Python
compares two datetimes that share a tzinfo by wall time, ignoring the fold.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import BigIntegerField, Func

from clinic.models import Clinic, Practitioner, Room, Service
from sessions.models import Appointment, AvailabilityException, ExceptionKind, WorkingHours

UTC = dt.UTC


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    location_id: int


@dataclass(frozen=True)
class Slot:
    practitioner_id: int
    location_id: int
    room_id: int | None
    start: dt.datetime
    end: dt.datetime


def _instant(date: dt.date, time: dt.time, tz) -> dt.datetime:
    # A wall time that does not exist (spring forward) resolves with the offset before the
    # change, i.e. just after the gap; a repeated one (fall back) takes its first occurrence.
    return dt.datetime.combine(date, time, tzinfo=tz).astimezone(UTC)


def _subtract(intervals: list[tuple], cut_start: dt.datetime, cut_end: dt.datetime) -> list[tuple]:
    result = []
    for start, end, location_id in intervals:
        if cut_end <= start or cut_start >= end:
            result.append((start, end, location_id))
            continue
        if start < cut_start:
            result.append((start, cut_start, location_id))
        if cut_end < end:
            result.append((cut_end, end, location_id))
    return result


def working_windows(
    *, clinic: Clinic, practitioner_ids: list[int], start: dt.datetime, end: dt.datetime, with_time_off: bool = True
) -> dict[int, list[Window]]:
    """Each practitioner's working windows (UTC, sorted) that touch [start, end).

    Two queries: the weekly hours and the dated exceptions of the range.
    """
    tz = clinic.tz
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first = start.astimezone(tz).date() - dt.timedelta(days=1)
    last = end.astimezone(tz).date() + dt.timedelta(days=1)
    weekly: dict[int, dict[int, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for practitioner_id, location_id, weekday, start_time, end_time in WorkingHours.objects.filter(
        practitioner_id__in=practitioner_ids
    ).values_list("practitioner_id", "location_id", "weekday", "start_time", "end_time"):
        weekly[practitioner_id][weekday].append((start_time, end_time, location_id))
    dated: dict[tuple[int, dt.date], list[tuple]] = defaultdict(list)
    for row in AvailabilityException.objects.filter(
        practitioner_id__in=practitioner_ids, date__gte=first, date__lte=last
    ).values_list("practitioner_id", "date", "kind", "start_time", "end_time", "location_id"):
        dated[(row[0], row[1])].append(row[2:])

    result: dict[int, list[Window]] = {}
    for practitioner_id in practitioner_ids:
        intervals: list[tuple] = []
        date = first
        while date <= last:
            day = [
                (_instant(date, s, tz), _instant(date, e, tz), loc)
                for s, e, loc in weekly[practitioner_id].get(date.weekday(), ())
            ]
            exceptions = dated.get((practitioner_id, date), ())
            for kind, s, e, loc in exceptions:
                if kind == ExceptionKind.EXTRA:
                    day.append((_instant(date, s, tz), _instant(date, e, tz), loc))
            if with_time_off:
                for kind, s, e, _loc in exceptions:
                    if kind != ExceptionKind.TIME_OFF:
                        continue
                    day = [] if s is None else _subtract(day, _instant(date, s, tz), _instant(date, e, tz))
            intervals.extend(day)
            date += dt.timedelta(days=1)
        result[practitioner_id] = [Window(s, e, loc) for s, e, loc in _merged(intervals) if s < end and e > start]
    return result


def _merged(intervals: list[tuple]) -> list[tuple]:
    """Sorted, non-overlapping windows: an extra shift that overlaps weekly hours extends them."""
    merged: list[list] = []
    for start, end, location_id in sorted(intervals):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            if location_id == last[2]:
                last[1] = max(last[1], end)
                continue
            start = last[1]
            if start >= end:
                continue
        merged.append([start, end, location_id])
    return [tuple(m) for m in merged]


def working_window_for(
    *, clinic: Clinic, practitioner: Practitioner, start: dt.datetime, end: dt.datetime
) -> tuple[Window | None, str]:
    """The working window that holds [start, end), or None and the reason it is refused."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    windows = working_windows(clinic=clinic, practitioner_ids=[practitioner.pk], start=start, end=end)
    for window in windows[practitioner.pk]:
        if window.start <= start and end <= window.end:
            return window, ""
    scheduled = working_windows(
        clinic=clinic, practitioner_ids=[practitioner.pk], start=start, end=end, with_time_off=False
    )
    if any(w.start <= start and end <= w.end for w in scheduled[practitioner.pk]):
        local = start.astimezone(clinic.tz).date()
        reasons = AvailabilityException.objects.filter(
            practitioner=practitioner, date=local, kind=ExceptionKind.TIME_OFF
        ).values_list("reason", flat=True)
        why = next((r for r in reasons if r), "")
        return None, f"{practitioner} is off at that time" + (f" ({why})." if why else ".")
    return None, f"That time is outside {practitioner}'s working hours."


def is_aligned(start: dt.datetime, *, clinic: Clinic) -> bool:
    local = start.astimezone(clinic.tz)
    minutes = local.hour * 60 + local.minute
    return local.second == 0 and local.microsecond == 0 and minutes % clinic.booking_granularity_minutes == 0


def _first_aligned(instant: dt.datetime, *, tz, granularity: int) -> dt.datetime:
    local = instant.astimezone(tz)
    minutes = local.hour * 60 + local.minute
    extra = dt.timedelta(seconds=local.second, microseconds=local.microsecond)
    step = (-minutes) % granularity
    if extra and step == 0:
        step = granularity
    return instant - extra + dt.timedelta(minutes=step)


class Epoch(Func):
    """Whole seconds since 1970 of a datetime column. The slot search loads thousands of
    appointment times; integers load several times faster than aware datetimes."""

    output_field = BigIntegerField()
    template = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)"

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite stores UTC text; '%%%%s' survives both Django's and the driver's % handling.
        return self.as_sql(compiler, connection, template="CAST(STRFTIME('%%%%s', %(expressions)s) AS INTEGER)")


def _busy_by(queryset, key: str) -> dict[int, list[tuple[int, int]]]:
    busy: dict[int, list] = defaultdict(list)
    rows = queryset.annotate(_s=Epoch("start"), _e=Epoch("blocked_until")).values_list(key, "_s", "_e")
    for owner, start, end in rows:
        busy[owner].append((start, end))
    for intervals in busy.values():
        intervals.sort()
    return busy


def _ts(value: dt.datetime) -> int:
    return int(value.timestamp())


def free_slots(
    *,
    clinic: Clinic,
    service: Service,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    practitioner_ids: list[int] | None = None,
    location_id: int | None = None,
    exclude_appointment_id: int | None = None,
) -> list[Slot]:
    """Bookable starts in [start, end): hours, exceptions, appointments, buffers and rooms.

    `exclude_appointment_id` leaves one appointment out, as rescheduling it does: its own time
    is free for it (a 10:00 visit may move to 10:30).

    Five queries whatever the range: practitioners, weekly hours, exceptions, appointments,
    and (for services that need one) rooms with their appointments.
    """
    practitioners = Practitioner.objects.filter(clinic=clinic, is_active=True, services=service)
    if practitioner_ids is not None:
        practitioners = practitioners.filter(pk__in=practitioner_ids)
    ids = sorted(practitioners.values_list("pk", flat=True))
    if not ids:
        return []
    start, end, now = start.astimezone(UTC), end.astimezone(UTC), now.astimezone(UTC)
    duration = service.duration_minutes * 60
    occupied = duration + service.buffer_minutes * 60
    step = clinic.booking_granularity_minutes * 60
    windows = working_windows(clinic=clinic, practitioner_ids=ids, start=start, end=end)
    span = dt.timedelta(seconds=occupied)
    horizon = Appointment.objects.active().overlapping(start - span, end + span)
    if exclude_appointment_id is not None:
        horizon = horizon.exclude(pk=exclude_appointment_id)
    busy = _busy_by(horizon.filter(practitioner_id__in=ids), "practitioner_id")
    rooms: list[tuple[int, int | None]] = []
    room_busy: dict[int, list] = {}
    if service.requires_room:
        rooms = list(
            Room.objects.filter(clinic=clinic, is_active=True, services=service)
            .order_by("pk")
            .values_list("pk", "location_id")
        )
        room_busy = _busy_by(horizon.filter(room_id__in=[r for r, _ in rooms]), "room_id")
    earliest, last = _ts(max(start, now)), _ts(end)
    found: list[tuple[int, int, int, int | None]] = []
    # The loop below is the hot path of a month-wide search: plain ints and inlined cursors.
    # A busy practitioner jumps straight to the first aligned start after the busy block.
    for practitioner_id in ids:
        p_busy = busy.get(practitioner_id, [])
        p_count, p_at = len(p_busy), 0
        room_at = dict.fromkeys(room_busy, 0)
        for window in windows[practitioner_id]:
            if location_id is not None and window.location_id != location_id:
                continue
            here = [r for r, loc in rooms if loc is None or loc == window.location_id]
            if service.requires_room and not here:
                continue
            candidate = _ts(_first_aligned(window.start, tz=clinic.tz, granularity=clinic.booking_granularity_minutes))
            window_end = _ts(window.end)
            while candidate + duration <= window_end and candidate < last:
                if candidate < earliest:
                    candidate += -(-(earliest - candidate) // step) * step
                    continue
                until = candidate + occupied
                while p_at < p_count and p_busy[p_at][1] <= candidate:
                    p_at += 1
                if p_at < p_count and p_busy[p_at][0] < until:
                    candidate += -(-(p_busy[p_at][1] - candidate) // step) * step
                    continue
                room_id = None
                for room in here:
                    intervals = room_busy.get(room)
                    if not intervals:
                        room_id = room
                        break
                    j = room_at[room]
                    while j < len(intervals) and intervals[j][1] <= candidate:
                        j += 1
                    room_at[room] = j
                    if j >= len(intervals) or intervals[j][0] >= until:
                        room_id = room
                        break
                if room_id is not None or not service.requires_room:
                    found.append((candidate, practitioner_id, window.location_id, room_id))
                candidate += step
    found.sort()
    tz = clinic.tz
    # Built in the clinic's zone from timestamps (never by adding minutes to a zoned datetime).
    # Practitioners share start times and one slot's end is another's start: each instant is
    # converted once (a month for ten practitioners: about 900 instants for 1,600 slots) and
    # the slots share the (immutable) datetime objects.
    moments: dict[int, dt.datetime] = {}

    def moment(at: int) -> dt.datetime:
        value = moments.get(at)
        if value is None:
            value = moments[at] = dt.datetime.fromtimestamp(at, tz)
        return value

    return [
        Slot(practitioner_id, window_location, room_id, moment(at), moment(at + duration))
        for at, practitioner_id, window_location, room_id in found
    ]
