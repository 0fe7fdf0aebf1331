"""The therapist's Today page and the landing panels of the sessions app.

Today: each of the user's practitioner profiles, the day on its clinic's wall clock, one row
per visit sorted by time (a started note replaces its appointment), with the patient's active
flags as badges (urgent first, and urgent rows summed up above the table), the intake status,
the last visit's summary behind one click, and a link to start or continue the note.

Landing panels (clinic.admin.landing): the front desk's day and unconfirmed bookings, the
therapist's Today, the owner's unacknowledged urgent flags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from clinic.admin import user_clinic_ids
from clinic.admin.landing import PANEL_ROWS, Panel, PanelRow, clinic_time, landing_panel_register
from clinic.models import AuditAction, Clinic, Practitioner
from clinic.security.access import scope_clinical_rows_for_staff
from clinic.security.audit import audit_record
from clinic.security.roles import Role
from intake.models import FlagSeverity, IntakeLink, IntakeLinkStatus, PatientFlag
from patients.models import Patient
from sessions.models import Appointment, AppointmentStatus, NoteStatus, TreatmentSession

SEVERITY_ORDER = {FlagSeverity.URGENT: 0, FlagSeverity.CAUTION: 1, FlagSeverity.INFO: 2}


@dataclass
class TodayRow:
    start: dt.datetime
    patient: Patient
    what: str
    note_url: str
    note_label: str
    appointment: Appointment | None = None
    session: TreatmentSession | None = None
    flags: list[PatientFlag] = field(default_factory=list)
    intake: str = ""
    previous: TreatmentSession | None = None

    @property
    def urgent(self) -> list[PatientFlag]:
        return [f for f in self.flags if f.severity == FlagSeverity.URGENT]


def day_bounds(clinic: Clinic, day: dt.date | None = None) -> tuple[dt.date, dt.datetime, dt.datetime]:
    tz = clinic.tz
    day = day or timezone.now().astimezone(tz).date()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return day, start, end


def active_flags_by_patient(patient_ids) -> dict[int, list[PatientFlag]]:
    found: dict[int, list[PatientFlag]] = {}
    for flag in PatientFlag.objects.active().filter(patient_id__in=patient_ids):
        found.setdefault(flag.patient_id, []).append(flag)
    for flags in found.values():
        flags.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), -f.pk))
    return found


def intake_status_by_patient(patient_ids, appointment_ids) -> dict[tuple[int, int | None], str]:
    """A short intake status per (patient, appointment): the appointment's own link if it has
    one, else the patient's latest link."""
    now = timezone.now()
    statuses: dict[tuple[int, int | None], str] = {}
    links = IntakeLink.objects.filter(patient_id__in=patient_ids).order_by("created_at", "id")
    for link in links.only("patient_id", "appointment_id", "status", "expires_at", "submitted_at"):
        if link.status == IntakeLinkStatus.SUBMITTED:
            text = "Intake done"
        elif link.status == IntakeLinkStatus.OPEN and link.expires_at > now:
            text = "Intake sent, not done"
        elif link.status == IntakeLinkStatus.OPEN:
            text = "Intake link expired"
        else:
            text = "Intake link revoked"
        statuses[(link.patient_id, None)] = text  # the latest wins
        if link.appointment_id in appointment_ids:
            statuses[(link.patient_id, link.appointment_id)] = text
    return statuses


def previous_visits(user, patient_ids, before: dt.datetime) -> dict[int, TreatmentSession]:
    """Each patient's last note before the day, among the notes the user may read."""
    latest = (
        TreatmentSession.objects.filter(patient=OuterRef("pk"), started_at__lt=before)
        .order_by("-started_at", "-id")
        .values("id")[:1]
    )
    ids = Patient.objects.filter(pk__in=patient_ids).annotate(last=Subquery(latest)).values_list("last", flat=True)
    readable = scope_clinical_rows_for_staff(TreatmentSession.objects.filter(pk__in=[i for i in ids if i]), user=user)
    return {s.patient_id: s for s in readable}


def practitioner_day(request, profile: Practitioner, add_url: str) -> dict:
    day, start, end = day_bounds(profile.clinic)
    sessions = list(
        TreatmentSession.objects.filter(practitioner=profile, started_at__gte=start, started_at__lt=end)
        .select_related("patient")
        .order_by("started_at")
    )
    with_session = {s.appointment_id for s in sessions if s.appointment_id}
    appointments = [
        a
        for a in Appointment.objects.active()
        .filter(practitioner=profile, start__gte=start, start__lt=end)
        .select_related("patient", "service")
        .order_by("start")
        if a.pk not in with_session
    ]
    rows = []
    for session in sessions:
        draft = session.status == NoteStatus.DRAFT
        rows.append(
            TodayRow(
                start=session.started_at,
                patient=session.patient,
                what=f"Note {session.get_status_display().lower()}",
                note_url=reverse("admin:treatment_sessions_treatmentsession_change", args=[session.pk]),
                note_label="Continue note" if draft else "Open note",
                session=session,
            )
        )
    for appointment in appointments:
        query = (
            f"?appointment={appointment.pk}&patient={appointment.patient_id}"
            f"&practitioner={profile.pk}&clinic={profile.clinic_id}"
        )
        rows.append(
            TodayRow(
                start=appointment.start,
                patient=appointment.patient,
                what=f"{appointment.service.name} ({appointment.get_status_display().lower()})",
                note_url=add_url + query,
                note_label="Start note",
                appointment=appointment,
            )
        )
    rows.sort(key=lambda row: (row.start, row.patient.pk))
    patient_ids = {row.patient.pk for row in rows}
    flags = active_flags_by_patient(patient_ids)
    intake = intake_status_by_patient(patient_ids, {a.pk for a in appointments})
    previous = previous_visits(request.user, patient_ids, start)
    for row in rows:
        row.flags = flags.get(row.patient.pk, [])
        appointment_id = row.appointment.pk if row.appointment else None
        row.intake = intake.get((row.patient.pk, appointment_id)) or intake.get((row.patient.pk, None)) or "No intake"
        row.previous = previous.get(row.patient.pk)
    return {"practitioner": profile, "date": day, "rows": rows, "urgent": [r for r in rows if r.urgent]}


def my_days(request) -> list[dict]:
    profiles = Practitioner.objects.filter(user=request.user, clinic__in=user_clinic_ids(request), is_active=True)
    add_url = reverse("admin:treatment_sessions_treatmentsession_add")
    return [practitioner_day(request, p, add_url) for p in profiles.select_related("clinic").order_by("clinic_id")]


def audit_days(request, days: list[dict]) -> None:
    """The page shows notes of the day and the previous visits' summaries: one list event per clinic."""
    for day in days:
        rows = day["rows"]
        audit_record(
            action=AuditAction.LIST,
            clinic=day["practitioner"].clinic,
            request=request,
            via="admin",
            extra={
                "page": "today",
                "ids": [r.session.pk for r in rows if r.session],
                "previous": [r.previous.pk for r in rows if r.previous],
            },
        )


def today_view(model_admin, request):
    if not model_admin.has_view_permission(request):
        model_admin._audit_denied(request)
        raise PermissionDenied
    days = my_days(request)
    audit_days(request, days)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Today",
        "days": days,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/treatment_sessions/today.html", context)


# --- landing panels ---------------------------------------------------------------------------


def _badge(flags: list[PatientFlag]) -> str:
    severities = {f.severity for f in flags}
    if FlagSeverity.URGENT in severities:
        return "urgent"
    return "caution" if FlagSeverity.CAUTION in severities else ""


def therapist_today_panel(request, clinics: list[Clinic]) -> Panel | None:
    days = [d for d in my_days(request) if d["practitioner"].clinic in clinics]
    if not days:
        return None
    audit_days(request, days)
    rows = []
    for day in days:
        clinic = day["practitioner"].clinic
        for row in day["rows"]:
            urgent = "; ".join(f.title for f in row.urgent)
            rows.append(
                PanelRow(
                    text=f"{row.patient} · {row.what}",
                    when=clinic_time(row.start, clinic, "%H:%M"),
                    url=row.note_url,
                    badge=_badge(row.flags),
                    detail=f"{urgent + ' · ' if urgent else ''}{row.intake}",
                )
            )
    return Panel(
        key="therapist-today",
        title="Today",
        rows=rows,
        more_url=reverse("admin:treatment_sessions_today"),
        more_label="Open Today (flags, intake, last visit, notes)",
        empty="Nothing booked today.",
    )


def _appointment_rows(appointments: list[Appointment], clinics: dict[int, Clinic], fmt: str) -> list[PanelRow]:
    flags = active_flags_by_patient({a.patient_id for a in appointments})
    return [
        PanelRow(
            # Severity only: the flag's clinical text is for those who may read the record.
            text=f"{a.patient} with {a.practitioner} · {a.service.name} ({a.get_status_display().lower()})",
            when=clinic_time(a.start, clinics[a.clinic_id], fmt),
            url=reverse("admin:treatment_sessions_appointment_change", args=[a.pk]),
            badge=_badge(flags.get(a.patient_id, [])),
        )
        for a in appointments
    ]


def desk_today_panel(request, clinics: list[Clinic]) -> Panel:
    by_id = {c.pk: c for c in clinics}
    today = Q(pk__in=[])
    for clinic in clinics:  # each clinic's own day, on its own wall clock
        _day, start, end = day_bounds(clinic)
        today |= Q(clinic=clinic, start__gte=start, start__lt=end)
    appointments = list(
        Appointment.objects.active()
        .filter(today)
        .select_related("patient", "practitioner", "service")
        .order_by("start")
    )
    # The panel's own button opens the calendar (clinic_index.html); the old day view redirects there.
    return Panel(
        key="desk-today",
        title="Today's appointments",
        rows=_appointment_rows(appointments, by_id, "%H:%M"),
        total=len(appointments),
        empty="No appointments today.",
    )


def unconfirmed_panel(request, clinics: list[Clinic]) -> Panel:
    by_id = {c.pk: c for c in clinics}
    waiting = Appointment.objects.filter(
        clinic__in=clinics, status=AppointmentStatus.BOOKED, start__gte=timezone.now()
    ).select_related("patient", "practitioner", "service")
    total = waiting.count()
    changelist = reverse("admin:treatment_sessions_appointment_changelist")
    return Panel(
        key="unconfirmed",
        title="Unconfirmed appointments",
        rows=_appointment_rows(list(waiting.order_by("start")[:PANEL_ROWS]), by_id, "%a %d %b %H:%M"),
        total=total,
        more_url=f"{changelist}?status__exact={AppointmentStatus.BOOKED}",
        more_label="All unconfirmed (select them and choose “Confirm”)",
        empty="Every upcoming appointment is confirmed.",
    )


def urgent_flags_panel(request, clinics: list[Clinic]) -> Panel:
    by_id = {c.pk: c for c in clinics}
    flags = PatientFlag.objects.unacknowledged().filter(clinic__in=clinics, severity=FlagSeverity.URGENT)
    total = flags.count()
    changelist = reverse("admin:intake_patientflag_changelist")
    return Panel(
        key="urgent-flags",
        title="Urgent flags not yet acknowledged",
        rows=[
            PanelRow(
                text=f"{flag.patient}: {flag.title}",
                when=clinic_time(flag.created_at, by_id[flag.clinic_id]),
                url=reverse("admin:patients_patient_change", args=[flag.patient_id]),
                badge="urgent",
            )
            for flag in flags.select_related("patient").order_by("-created_at")[:PANEL_ROWS]
        ],
        total=total,
        more_url=f"{changelist}?severity__exact={FlagSeverity.URGENT}&acknowledged_at__isempty=1",
        more_label="All unacknowledged urgent flags",
        empty="No urgent flag waiting.",
    )


landing_panel_register(role=Role.THERAPIST, order=1, build=therapist_today_panel)
landing_panel_register(role=Role.RECEPTIONIST, order=5, build=desk_today_panel)
landing_panel_register(role=Role.RECEPTIONIST, order=6, build=unconfirmed_panel)
landing_panel_register(role=Role.OWNER, order=10, build=urgent_flags_panel)
