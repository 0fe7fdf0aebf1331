"""Reads and layout of the front-desk calendar (`sessions.admin.calendar`).

Everything is laid out on the clinic's wall clock: a block's position is its local time of
day, so a 09:00 visit sits at 09:00 on a daylight-saving day too. The number of queries is
fixed whatever the number of appointments: the appointments (with patient, service,
practitioner and room), the patients' intake links, their active flags, and the free-slot
search (`sessions.availability.free_slots`, the one the API's `/slots/` runs).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from clinic.models import Clinic, Practitioner, Room, Service
from intake.flag_detail import flag_neutral_text
from intake.models import FlagSeverity, IntakeLink, IntakeLinkStatus, PatientFlag
from sessions.availability import Slot, free_slots
from sessions.models import Appointment, AppointmentStatus, ConfirmedVia

PX_PER_MINUTE = 1.2
DEFAULT_FIRST_HOUR, DEFAULT_LAST_HOUR = 8, 18
# A flag badge shows the most severe active flag; information flags get none.
_SEVERITY_RANK = {FlagSeverity.URGENT: 0, FlagSeverity.CAUTION: 1}
_BADGE = {FlagSeverity.URGENT: "Urgent flag", FlagSeverity.CAUTION: "Caution flag"}
# A block's text lines (line-height in _calendar_style.html) and its padding, in px.
LINE_PX, BLOCK_PADDING_PX = 15.6, 4
# Visits the desk still looks for, drawn muted; they hold no time (free_slots skips them).
GONE = (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW)
_CONFIRMED_VIA = {
    ConfirmedVia.STAFF: "Confirmed (staff)",
    ConfirmedVia.EMAIL_LINK: "Confirmed (email link)",
    ConfirmedVia.SMS_REPLY: "Confirmed (SMS reply)",
}


@dataclass
class Block:
    kind: str  # "appointment" or "free"
    minute: int  # minutes after midnight, clinic time
    length: int  # minutes
    label: str
    url: str
    appointment: Appointment | None = None
    end_label: str = ""
    intake: tuple[str, str] = ("", "")  # (css class, text)
    flag: tuple[str, str, str] = ("", "", "")  # (severity, badge, what it asks of staff)
    top: int = 0  # px
    height: int = 0
    meta_lines: int = 2  # how many of the two detail lines fit under the time and name

    @property
    def status_text(self) -> str:
        """ "Confirmed (SMS reply)" when the patient or staff confirmed it, else the status."""
        a = self.appointment
        if a.status == AppointmentStatus.CONFIRMED and a.confirmed_at is not None:
            return _CONFIRMED_VIA.get(a.confirmed_via, "Confirmed")
        return a.get_status_display()


@dataclass
class Column:
    title: str
    subtitle: str = ""
    blocks: list[Block] = field(default_factory=list)
    gone: list[Block] = field(default_factory=list)  # cancelled and no-show, listed under the column

    @property
    def free_count(self) -> int:
        return sum(1 for b in self.blocks if b.kind == "free")


def local_day_bounds(date: dt.date, tz) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime.combine(date, dt.time(0), tzinfo=tz), dt.datetime.combine(
        date + dt.timedelta(days=1), dt.time(0), tzinfo=tz
    )


def minute_of_day(value: dt.datetime, tz) -> int:
    local = value.astimezone(tz)
    return local.hour * 60 + local.minute


def book_url(clinic: Clinic, service: Service, slot: Slot) -> str:
    query = {
        "clinic": clinic.slug,
        "practitioner": slot.practitioner_id,
        "service": service.pk,
        "start": slot.start.isoformat(),
    }
    if slot.room_id:
        query["room"] = slot.room_id
    return reverse("admin:calendar_book") + "?" + urlencode(query)


def intake_states(appointments: list[Appointment]) -> dict[int, tuple[str, str]]:
    """Each appointment's intake: its own link if it has one, else the patient's latest."""
    patient_ids = {a.patient_id for a in appointments}
    links = IntakeLink.objects.filter(patient_id__in=patient_ids).values_list(
        "patient_id", "appointment_id", "status", "expires_at"
    )
    own: dict[int, tuple] = {}
    latest: dict[int, tuple] = {}
    now = timezone.now()
    # Ordered newest first (the model's ordering): the first seen wins.
    for patient_id, appointment_id, status, expires_at in links:
        state = _intake_state(status, expires_at, now)
        if appointment_id is not None:
            own.setdefault(appointment_id, state)
        latest.setdefault(patient_id, state)
    return {a.pk: own.get(a.pk) or latest.get(a.patient_id) or ("intake-none", "No intake") for a in appointments}


def _intake_state(status: str, expires_at: dt.datetime, now: dt.datetime) -> tuple[str, str]:
    if status == IntakeLinkStatus.SUBMITTED:
        return ("intake-done", "Intake submitted")
    if status == IntakeLinkStatus.REVOKED:
        return ("intake-none", "Intake revoked")
    if expires_at <= now:
        return ("intake-expired", "Intake expired")
    return ("intake-open", "Intake sent, not submitted")


def flag_badges(patient_ids: set[int]) -> dict[int, tuple[str, str, str]]:
    """The most severe active flag per patient, as the neutral text every role may read
    (the condition itself is clinical content: intake.flag_detail)."""
    worst: dict[int, str] = {}
    for patient_id, severity in (
        PatientFlag.objects.active().filter(patient_id__in=patient_ids).values_list("patient_id", "severity")
    ):
        if severity not in _SEVERITY_RANK:
            continue
        if patient_id not in worst or _SEVERITY_RANK[severity] < _SEVERITY_RANK[worst[patient_id]]:
            worst[patient_id] = severity
    return {pid: (severity, _BADGE[severity], flag_neutral_text(severity)) for pid, severity in worst.items()}


def appointments_between(
    clinic: Clinic, start: dt.datetime, end: dt.datetime, *, owner_key: str, owner_ids: list[int]
) -> list[Appointment]:
    """The range's appointments of the columns shown (`owner_key` is practitioner_id or room_id)."""
    return list(
        Appointment.objects.filter(clinic=clinic, start__gte=start, start__lt=end, **{f"{owner_key}__in": owner_ids})
        .select_related("patient", "practitioner", "service", "room")
        .order_by("start", "pk")
    )


def appointment_blocks(appointments: list[Appointment], tz) -> dict[int, Block]:
    intake = intake_states(appointments) if appointments else {}
    flags = flag_badges({a.patient_id for a in appointments}) if appointments else {}
    blocks = {}
    for a in appointments:
        start, end = a.start.astimezone(tz), a.end.astimezone(tz)
        blocks[a.pk] = Block(
            kind="appointment",
            minute=minute_of_day(start, tz),
            length=max(int((end - start).total_seconds() // 60), 15),
            label=f"{start:%H:%M}",
            end_label=f"{end:%H:%M}",
            url=reverse("admin:calendar_appointment", args=[a.pk]),
            appointment=a,
            intake=intake[a.pk],
            flag=flags.get(a.patient_id, ("", "", "")),
        )
    return blocks


@dataclass
class CalendarQuery:
    clinic: Clinic
    date: dt.date
    week: bool
    by_room: bool
    service: Service | None
    focus: Practitioner | Room | None
    practitioners: list[Practitioner]
    rooms: list[Room]


def calendar_columns(query: CalendarQuery) -> tuple[list[Column], list[dict], int]:
    """The columns to draw, the hour marks and the height of a column in px."""
    clinic, tz = query.clinic, query.clinic.tz
    first_day = query.date - dt.timedelta(days=query.date.weekday()) if query.week else query.date
    days = [first_day + dt.timedelta(days=i) for i in range(7 if query.week else 1)]
    start, _ = local_day_bounds(days[0], tz)
    _, end = local_day_bounds(days[-1], tz)
    owners = query.rooms if query.by_room else query.practitioners
    if query.focus is not None:
        owners = [query.focus]
    owner_ids = [o.pk for o in owners]
    key = "room_id" if query.by_room else "practitioner_id"
    appointments = appointments_between(clinic, start, end, owner_key=key, owner_ids=owner_ids)
    blocks = appointment_blocks(appointments, tz)
    slots: list[Slot] = []
    if query.service is not None and not query.by_room:
        slots = free_slots(
            clinic=clinic,
            service=query.service,
            start=start,
            end=end,
            now=timezone.now(),
            practitioner_ids=owner_ids,
        )
    step = clinic.booking_granularity_minutes

    def gone(owner_id: int, day: dt.date) -> list[Block]:
        return [b for b in mine(owner_id, day) if b.appointment.status in GONE]

    def mine(owner_id: int, day: dt.date) -> list[Block]:
        return [
            b
            for b in blocks.values()
            if getattr(b.appointment, key) == owner_id and b.appointment.start.astimezone(tz).date() == day
        ]

    def cell(owner_id: int, day: dt.date) -> list[Block]:
        found = [b for b in mine(owner_id, day) if b.appointment.status not in GONE]
        for slot in slots:
            if slot.practitioner_id == owner_id and slot.start.date() == day:
                found.append(
                    Block(
                        kind="free",
                        minute=minute_of_day(slot.start, tz),
                        length=step,
                        label=f"{slot.start:%H:%M}",
                        url=book_url(clinic, query.service, slot),
                    )
                )
        return sorted(found, key=lambda b: (b.minute, b.kind))

    if query.week:
        owner = owners[0] if owners else None
        columns = [
            Column(
                title=f"{day:%a} {day.day} {day:%b}",
                subtitle=str(owner),
                blocks=cell(owner.pk, day),
                gone=gone(owner.pk, day),
            )  # fmt: skip
            for day in days
            if owner is not None
        ]
    else:
        columns = [Column(title=str(o), blocks=cell(o.pk, days[0]), gone=gone(o.pk, days[0])) for o in owners]
    placed = _place(columns)
    # A narrow week column puts the time on one line and the flag badge and name on the next;
    # a day column has them on one line. The detail lines show only where whole lines fit
    # (the rest is in the block's title and accessible name), so a badge is never cut.
    head = 2 if query.week else 1
    for column in columns:
        for block in column.blocks:
            block.meta_lines = max(0, int((block.height - BLOCK_PADDING_PX) // LINE_PX) - head)
    return placed


def _place(columns: list[Column]) -> tuple[list[Column], list[dict], int]:
    every = [b for c in columns for b in c.blocks]
    first = min([b.minute for b in every] + [DEFAULT_FIRST_HOUR * 60]) // 60 * 60
    last = max([b.minute + b.length for b in every] + [DEFAULT_LAST_HOUR * 60])
    last = min(-(-last // 60) * 60, 24 * 60)
    for block in every:
        block.top = round((block.minute - first) * PX_PER_MINUTE)
        block.height = round(block.length * PX_PER_MINUTE)
    hours = [
        {"label": f"{minute // 60:02d}:00", "top": round((minute - first) * PX_PER_MINUTE)}
        for minute in range(first, last, 60)
    ]
    return columns, hours, round((last - first) * PX_PER_MINUTE)


def visible_practitioners(clinic: Clinic) -> list[Practitioner]:
    return list(Practitioner.objects.filter(clinic=clinic, is_active=True))


def visible_rooms(clinic: Clinic) -> list[Room]:
    return list(Room.objects.filter(clinic=clinic, is_active=True))


def bookable_services(clinic: Clinic) -> list[Service]:
    return list(Service.objects.filter(clinic=clinic, is_active=True))


def free_slots_for_move(
    *, appointment: Appointment, date: dt.date, practitioners: list[Practitioner]
) -> list[tuple[Practitioner, list[Slot]]]:
    """One day's free starts of the appointment's service for every practitioner offering it;
    the appointment's own time counts as free, as `appointment_reschedule` sees it, but its
    current start with its own practitioner is no move and is not offered."""
    clinic = appointment.clinic
    start, end = local_day_bounds(date, clinic.tz)
    slots = free_slots(
        clinic=clinic,
        service=appointment.service,
        start=start,
        end=end,
        now=timezone.now(),
        exclude_appointment_id=appointment.pk,
    )
    grouped: dict[int, list[Slot]] = defaultdict(list)
    for slot in slots:
        if slot.start == appointment.start and slot.practitioner_id == appointment.practitioner_id:
            continue
        grouped[slot.practitioner_id].append(slot)
    return [(p, grouped[p.pk]) for p in practitioners if grouped.get(p.pk)]


def services_offered(practitioners: list[Practitioner]) -> set[int]:
    """The ids of the services at least one of `practitioners` offers (one query)."""
    through = Practitioner.services.through
    return set(
        through.objects.filter(practitioner_id__in=[p.pk for p in practitioners]).values_list("service_id", flat=True)
    )
