"""Outcome measure writes: courses, links (sent through the outbox), responses, the repeat rhythm."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinic.messaging.outbox import messages_cancel_about
from clinic.models import AuditAction, Clinic, MessageKind
from clinic.security.audit import audit_record
from outcomes.measures import Measure, clean_answers, measure_named, score
from outcomes.messages import outcome_link_message_create
from outcomes.models import (
    MeasureText,
    OutcomeCourse,
    OutcomeLink,
    OutcomeLinkReason,
    OutcomeLinkStatus,
    OutcomeResponse,
    OutcomeSettings,
    ResponseStatus,
)
from outcomes.tokens import new_nonce
from patients.models import Patient
from sessions.models import Appointment, AppointmentStatus

logger = logging.getLogger(__name__)

ATTENDED = (AppointmentStatus.ARRIVED, AppointmentStatus.COMPLETED)


class LinkUnavailableError(Exception):
    """The link exists but can't be used: expired, already submitted or revoked (HTTP 410)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def outcome_settings_for(clinic: Clinic) -> OutcomeSettings:
    found = OutcomeSettings.objects.filter(clinic=clinic).first()
    return found if found is not None else OutcomeSettings(clinic=clinic)


# --- the wording a patient sees --------------------------------------------------------------


@dataclass(frozen=True)
class FormItem:
    code: str
    text: str
    options: list[tuple[int, str]]


def measure_form(*, clinic: Clinic, measure: Measure) -> tuple[str, list[FormItem]]:
    """(instructions, items) as the patient page shows them: the shipped wording, or the clinic's
    licensed wording for a measure we may not redistribute. A ValidationError when the clinic has
    not entered that wording (no link can be sent then)."""
    if measure.scoring == "mean_of_activities":
        return measure.instructions, []
    if measure.text_redistributable:
        options = list(measure.options)
        items = []
        for item in measure.items:
            item_options = options or [(n, str(n)) for n in range(item.low, item.high + 1)]
            items.append(FormItem(code=item.code, text=item.text, options=item_options))
        return measure.instructions, items
    text = MeasureText.objects.filter(clinic=clinic, measure=measure.code).first()
    if text is None:
        raise ValidationError(
            {
                "measure": [
                    f"{measure.short}: its text is licensed; enter your licensed wording under Measure texts first."
                ]
            }
        )
    items = []
    for item in measure.items:
        entry = text.items.get(item.code) or {}
        labels = entry.get("options") or []
        items.append(
            FormItem(
                code=item.code,
                text=entry.get("text") or item.text,
                options=list(zip(range(item.low, item.high + 1), labels, strict=False)),
            )
        )
    return text.instructions, items


def measure_text_check(*, measure: Measure, items) -> None:
    """A clinic's licensed wording must cover every item with one label per value."""
    if not isinstance(items, dict):
        raise ValidationError({"items": ["Send an object keyed by item code."]})
    errors = []
    for item in measure.items:
        entry = items.get(item.code)
        expected = item.high - item.low + 1
        if not isinstance(entry, dict) or not str(entry.get("text", "")).strip():
            errors.append(f"{item.code}: enter the item's text.")
            continue
        labels = entry.get("options")
        if not isinstance(labels, list) or len(labels) != expected or not all(str(x).strip() for x in labels):
            errors.append(f"{item.code}: enter {expected} answer labels (values {item.low} to {item.high}).")
    unknown = set(items) - set(measure.item_codes)
    if unknown:
        errors.append(f"Unknown item code(s): {', '.join(sorted(unknown))}.")
    if errors:
        raise ValidationError({"items": errors})


# --- courses and links ----------------------------------------------------------------------


def _course_open(*, patient: Patient, measure: Measure, practitioner=None) -> OutcomeCourse:
    course = (
        OutcomeCourse.objects.select_for_update()
        .filter(patient=patient, measure=measure.code, finished_at__isnull=True)
        .first()
    )
    if course is None:
        course = OutcomeCourse(clinic=patient.clinic, patient=patient, measure=measure.code, practitioner=practitioner)
        course.full_clean()
        course.save()
    elif course.practitioner_id is None and practitioner is not None:
        course.practitioner = practitioner
        course.save(update_fields=["practitioner"])
    return course


@transaction.atomic
def outcome_link_create(
    *,
    patient: Patient,
    measure: str,
    reason: str = OutcomeLinkReason.BASELINE,
    practitioner=None,
    created_by=None,
    send: bool = False,
    now: dt.datetime | None = None,
) -> OutcomeLink:
    """A link for the patient to fill `measure`, in the patient's open course of it (started
    here if none). With `send`, the outbox sends it by the patient's channel."""
    definition = measure_named(measure)
    measure_form(clinic=patient.clinic, measure=definition)  # refuses a licensed measure without its text
    if practitioner is not None and practitioner.clinic_id != patient.clinic_id:
        raise ValidationError({"practitioner": ["Not found."]})
    now = now or timezone.now()
    course = _course_open(patient=patient, measure=definition, practitioner=practitioner)
    link = OutcomeLink(
        clinic=patient.clinic, patient=patient, course=course, measure=definition.code, reason=reason,
        nonce=new_nonce(), created_by=created_by, created_at=now,
        expires_at=now + dt.timedelta(days=outcome_settings_for(patient.clinic).link_valid_days),
    )  # fmt: skip
    link.full_clean()
    link.save()
    if send:
        outcome_link_message_create(link=link)
    return link


def outcome_link_for_token(nonce: str) -> OutcomeLink:
    """The link a patient opened; OutcomeLink.DoesNotExist or LinkUnavailableError(reason)."""
    link = OutcomeLink.objects.select_related("clinic", "patient").get(nonce=nonce)
    if link.status != OutcomeLinkStatus.OPEN:
        raise LinkUnavailableError(link.status)
    if link.expires_at <= timezone.now():
        raise LinkUnavailableError("expired")
    return link


@transaction.atomic
def outcome_link_revoke(*, link: OutcomeLink) -> OutcomeLink:
    updated = OutcomeLink.objects.filter(pk=link.pk, status=OutcomeLinkStatus.OPEN).update(
        status=OutcomeLinkStatus.REVOKED
    )
    if updated:
        messages_cancel_about(about=link, kinds=[MessageKind.OUTCOME_LINK], reason="link revoked")
    link.refresh_from_db()
    return link


# --- responses ------------------------------------------------------------------------------


def _response_save(*, course: OutcomeCourse, measure: Measure, answers, link=None, by=None, recorded_on=None):
    cleaned = clean_answers(measure, answers)
    result = score(measure, cleaned)
    now = timezone.now()
    response = OutcomeResponse(
        clinic=course.clinic, patient=course.patient, course=course, link=link, measure=measure.code,
        measure_version=measure.version, answers=cleaned,
        status=ResponseStatus.COMPLETE if result.complete else ResponseStatus.INCOMPLETE,
        score=result.score, missing=result.missing, recorded_at=now, entered_by=by,
        recorded_on=recorded_on or timezone.localdate(now, course.clinic.tz),
    )  # fmt: skip
    response.full_clean()
    response.save()
    return response


@transaction.atomic
def outcome_submit(*, link: OutcomeLink, answers) -> OutcomeResponse:
    """The patient's answers by link: scored as published, or stored as incomplete.

    Out-of-range values are a ValidationError and nothing is stored; a second submission of
    the same link (two tabs) finds it submitted: LinkUnavailableError."""
    locked = OutcomeLink.objects.select_for_update().select_related("course", "clinic", "patient").get(pk=link.pk)
    if locked.status != OutcomeLinkStatus.OPEN:
        raise LinkUnavailableError(locked.status)
    if locked.expires_at <= timezone.now():
        raise LinkUnavailableError("expired")
    response = _response_save(course=locked.course, measure=measure_named(locked.measure), answers=answers, link=locked)
    locked.status, locked.submitted_at = OutcomeLinkStatus.SUBMITTED, response.recorded_at
    locked.save(update_fields=["status", "submitted_at"])
    messages_cancel_about(about=locked, kinds=[MessageKind.OUTCOME_LINK], reason="measure answered")
    return response


@transaction.atomic
def outcome_record(
    *, patient: Patient, measure: str, answers, recorded_on: dt.date, by, request=None
) -> OutcomeResponse:
    """Staff type in a paper form. Same scoring and the same incomplete rule; audited."""
    definition = measure_named(measure)
    if recorded_on > timezone.localdate(timezone.now(), patient.clinic.tz):
        raise ValidationError({"recorded_on": ["The date cannot be in the future."]})
    course = _course_open(patient=patient, measure=definition)
    response = _response_save(course=course, measure=definition, answers=answers, by=by, recorded_on=recorded_on)
    audit_record(action=AuditAction.CREATE, obj=response, patient_id=patient.pk, request=request, actor=by, via="api")
    return response


@transaction.atomic
def outcome_course_finish(*, course: OutcomeCourse, by, now: dt.datetime | None = None) -> OutcomeCourse:
    """End a course (discharge): it then counts in the MCID report; its open links are revoked."""
    now = now or timezone.now()
    updated = OutcomeCourse.objects.filter(pk=course.pk, finished_at__isnull=True).update(
        finished_at=now, finished_by=by
    )
    if updated:
        for link in OutcomeLink.objects.filter(course=course, status=OutcomeLinkStatus.OPEN):
            outcome_link_revoke(link=link)
    course.refresh_from_db()
    return course


# --- baseline with intake, repeats on the clinic's rhythm -----------------------------------


def outcome_baselines_after_intake(*, submission) -> list[OutcomeLink]:
    """After an intake is submitted: send the clinic's baseline measures (a measure the patient
    already follows in an open course is not started again)."""
    settings = outcome_settings_for(submission.clinic)
    appointment = submission.link.appointment
    practitioner = appointment.practitioner if appointment is not None else None
    links = []
    for code in settings.baseline_measures:
        if OutcomeCourse.objects.filter(patient=submission.patient, measure=code, finished_at__isnull=True).exists():
            continue
        try:
            links.append(
                outcome_link_create(patient=submission.patient, measure=code, practitioner=practitioner, send=True)
            )
        except ValidationError as exc:  # e.g. a licensed measure without its wording: skip, say why
            logger.warning("outcome baseline %s not sent for patient %s: %s", code, submission.patient_id, exc)
    return links


def _repeat_due(course: OutcomeCourse, settings: OutcomeSettings, now: dt.datetime) -> bool:
    last = OutcomeLink.objects.filter(course=course).order_by("-created_at", "-id").first()
    if last is None:
        return False  # a course typed in from paper starts its rhythm with its first link
    if last.status == OutcomeLinkStatus.OPEN and last.expires_at > now:
        return False  # the patient still has a link to answer
    if settings.repeat_every_weeks and last.created_at + dt.timedelta(weeks=settings.repeat_every_weeks) <= now:
        return True
    if settings.repeat_every_visits:
        visits = Appointment.objects.filter(
            patient_id=course.patient_id, status__in=ATTENDED, start__gt=last.created_at, start__lte=now
        ).count()
        return visits >= settings.repeat_every_visits
    return False


def outcome_repeats_send(*, now: dt.datetime | None = None) -> int:
    """Beat job: send the next link of every open course whose clinic's rhythm says it is due.
    Each course is locked and re-checked, so two runs (or two workers) send it once."""
    now = now or timezone.now()
    sent = 0
    rhythms = OutcomeSettings.objects.exclude(repeat_every_visits__isnull=True, repeat_every_weeks__isnull=True)
    for settings in rhythms.select_related("clinic"):
        course_ids = OutcomeCourse.objects.filter(
            clinic=settings.clinic, finished_at__isnull=True, patient__is_archived=False
        ).values_list("pk", flat=True)
        for course_id in course_ids:
            with transaction.atomic():
                course = OutcomeCourse.objects.select_for_update().select_related("patient__clinic").get(pk=course_id)
                if course.finished_at is not None or not _repeat_due(course, settings, now):
                    continue
                try:
                    outcome_link_create(
                        patient=course.patient, measure=course.measure, reason=OutcomeLinkReason.REPEAT,
                        send=True, now=now,
                    )  # fmt: skip
                except ValidationError as exc:
                    logger.warning("outcome repeat for course %s not sent: %s", course_id, exc)
                    continue
                sent += 1
    return sent
