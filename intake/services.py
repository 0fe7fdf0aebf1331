"""Intake operations: publish questionnaires, issue and revoke links, save drafts, submit, flag.

Sending goes through the message outbox (`clinic.messaging`, `intake.messages`): `intake_link_create(send=True)`
and `intake_link_resend` write an `intake_link` message, a link tied to an appointment gets an
`intake_nudge` before the visit, and submission cancels that nudge, all in the same
transaction as the change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from clinic.messaging.outbox import channel_choose, messages_cancel_about
from clinic.models import Clinic, MessageKind, User, WebhookEventType
from clinic.webhooks.delivery import webhook_event_emit
from intake.definition import Form, parse_form
from intake.messages import intake_link_message_create, intake_nudge_schedule, urgent_intake_alert_create
from intake.models import (
    FlagSeverity,
    IntakeChoice,
    IntakeLink,
    IntakeLinkStatus,
    IntakeSettings,
    IntakeSubmission,
    PatientFlag,
    Questionnaire,
    QuestionnaireStatus,
)
from intake.schema import check_definition
from intake.screening import screen
from intake.signals import intake_submitted
from intake.tokens import new_nonce
from patients.models import Patient

DEFAULT_QUESTIONNAIRE = IntakeChoice.LEG.value


class LinkUnavailableError(Exception):
    """The link exists but can't be used: expired, already submitted or revoked (HTTP 410)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- questionnaires -------------------------------------------------------------------


@transaction.atomic
def questionnaire_publish(*, definition: dict, clinic: Clinic | None = None) -> tuple[Questionnaire, bool]:
    """Publish `definition` as the next version of its code, unless the latest version is identical.

    Returns (questionnaire, created). Earlier versions are never touched, so every
    past submission keeps the exact questions it answered. A definition that fails the
    schema check (intake/schema.py) raises DefinitionError and publishes nothing.
    """
    form = parse_form(definition)
    check_definition(definition)
    if not form.code:
        raise ValidationError({"definition": ["A questionnaire needs a code."]})
    versions = Questionnaire.objects.select_for_update().filter(code=form.code, clinic=clinic)
    latest = versions.order_by("-version").first()
    if latest is not None and latest.definition == definition:
        return latest, False
    now = timezone.now()
    versions.filter(status=QuestionnaireStatus.PUBLISHED).update(status=QuestionnaireStatus.RETIRED)
    questionnaire = Questionnaire(
        clinic=clinic,
        code=form.code,
        version=(latest.version + 1) if latest else 1,
        title=form.title,
        status=QuestionnaireStatus.PUBLISHED,
        definition=definition,
        published_at=now,
    )
    questionnaire.full_clean()
    questionnaire.save()
    return questionnaire, True


def questionnaire_current(*, clinic: Clinic, code: str = DEFAULT_QUESTIONNAIRE) -> Questionnaire:
    """The published version a new link gets: the clinic's own form of that code, else the shared one."""
    found = (
        Questionnaire.objects.filter(code=code, status=QuestionnaireStatus.PUBLISHED)
        .filter(Q(clinic=clinic) | Q(clinic__isnull=True))
        .order_by(F("clinic_id").asc(nulls_last=True), "-version")
        .first()
    )
    if found is None:
        raise ValidationError({"questionnaire": [f"No published questionnaire {code!r}; run load_catalogs."]})
    return found


def intake_settings_for(clinic: Clinic) -> IntakeSettings:
    found = IntakeSettings.objects.filter(clinic=clinic).first()
    return found or IntakeSettings(clinic=clinic)


# --- links ----------------------------------------------------------------------------


@transaction.atomic
def intake_link_create(
    *,
    patient: Patient,
    created_by: User | None = None,
    appointment=None,
    questionnaire: Questionnaire | None = None,
    send: bool = False,
) -> IntakeLink:
    """A new link for `patient`, valid for the clinic's `link_valid_days`. `send` queues it to the patient.

    A link for an appointment is also nudged before the visit while it stays unsubmitted.
    """
    if patient.is_archived:
        raise ValidationError({"patient": ["This patient is archived."]})
    if appointment is not None and (appointment.clinic_id != patient.clinic_id or appointment.patient_id != patient.pk):
        raise ValidationError({"appointment": ["This appointment is not this patient's."]})
    if questionnaire is None:
        code = IntakeChoice.codes(intake_settings_for(patient.clinic).intakes)[0]
        questionnaire = questionnaire_current(clinic=patient.clinic, code=code)
    if questionnaire.clinic_id not in (None, patient.clinic_id) or questionnaire.status != "published":
        raise ValidationError({"questionnaire": ["Choose a published questionnaire of this clinic."]})
    days = intake_settings_for(patient.clinic).link_valid_days
    link = IntakeLink(
        clinic=patient.clinic,
        patient=patient,
        appointment=appointment,
        questionnaire=questionnaire,
        nonce=new_nonce(),
        expires_at=timezone.now() + dt.timedelta(days=days),
        created_by=created_by,
    )
    link.full_clean()
    link.save()
    if send:
        _queue_send(link)
    if appointment is not None:
        intake_nudge_schedule(patient=patient, about=link, appointment=appointment, url=link.url)
    return link


@transaction.atomic
def intake_links_create(
    *,
    patient: Patient,
    created_by: User | None = None,
    appointment=None,
    intake: str | None = None,
    send: bool = False,
) -> list[IntakeLink]:
    """The links of `intake` (an `IntakeChoice`; default: the clinic's setting), one per questionnaire.

    With both intakes the patient gets two links, each its own message, and each names the
    other as its `companion`, so staff see they went together. All or nothing.
    """
    choice = intake or intake_settings_for(patient.clinic).intakes
    if choice not in IntakeChoice.values:
        raise ValidationError({"intake": [f"Choose one of: {', '.join(IntakeChoice.values)}."]})
    questionnaires = [questionnaire_current(clinic=patient.clinic, code=code) for code in IntakeChoice.codes(choice)]
    links = [
        intake_link_create(
            patient=patient, created_by=created_by, appointment=appointment, questionnaire=questionnaire, send=send
        )
        for questionnaire in questionnaires
    ]
    if len(links) == 2:
        first, second = links
        first.companion, second.companion = second, first
        first.save(update_fields=["companion"])
        second.save(update_fields=["companion"])
    return links


def _queue_send(link: IntakeLink) -> None:
    """Write the next send of the link to the outbox (one occurrence per send)."""
    _channel, problem = channel_choose(link.patient)
    if problem:
        # Staff asked to send it now: refuse rather than write a message that is skipped.
        raise ValidationError({"patient": [f"The link can't be sent to this patient: {problem}."]})
    link.send_count += 1
    link.last_sent_at = timezone.now()
    link.save(update_fields=["send_count", "last_sent_at"])
    intake_link_message_create(
        patient=link.patient, about=link, url=link.url, expires_at=link.expires_at, occurrence=str(link.send_count)
    )


@transaction.atomic
def intake_link_revoke(*, link: IntakeLink, by: User | None = None) -> IntakeLink:
    locked = IntakeLink.objects.select_for_update().get(pk=link.pk)
    if locked.status == IntakeLinkStatus.SUBMITTED:
        raise ValidationError({"status": ["This intake was already submitted; it can't be revoked."]})
    if locked.status == IntakeLinkStatus.OPEN:
        locked.status = IntakeLinkStatus.REVOKED
        locked.revoked_at = timezone.now()
        locked.revoked_by = by
        locked.full_clean()
        locked.save(update_fields=["status", "revoked_at", "revoked_by"])
        messages_cancel_about(about=locked, kinds=[MessageKind.INTAKE_NUDGE], reason="intake link revoked")
    return locked


@transaction.atomic
def intake_link_resend(*, link: IntakeLink, by: User | None = None) -> IntakeLink:
    """Send the same link again; an open link gets a fresh validity period from now."""
    locked = IntakeLink.objects.select_for_update().select_related("patient", "clinic").get(pk=link.pk)
    if locked.status != IntakeLinkStatus.OPEN:
        raise ValidationError({"status": [f"This link is {locked.get_status_display().lower()}; create a new one."]})
    locked.expires_at = timezone.now() + dt.timedelta(days=intake_settings_for(locked.clinic).link_valid_days)
    locked.save(update_fields=["expires_at"])
    _queue_send(locked)
    locked.refresh_from_db()
    return locked


def intake_link_for_token(nonce: str) -> IntakeLink:
    """The link a patient opened; IntakeLink.DoesNotExist or LinkUnavailableError(reason)."""
    link = IntakeLink.objects.select_related("clinic", "patient", "questionnaire").get(nonce=nonce)
    if link.status == IntakeLinkStatus.SUBMITTED:
        raise LinkUnavailableError("submitted")
    if link.status == IntakeLinkStatus.REVOKED:
        raise LinkUnavailableError("revoked")
    if link.expires_at <= timezone.now():
        raise LinkUnavailableError("expired")
    return link


@transaction.atomic
def intake_draft_save(*, link: IntakeLink, section_code: str, raw: dict[str, Any], complete: bool) -> dict:
    """Clean one section's answers and keep them in the draft (save and resume).

    With `complete=False` ("save and finish later") blank required answers are
    allowed, but a malformed answer is still refused and nothing is saved.
    """
    locked = IntakeLink.objects.select_for_update().get(pk=link.pk)
    _ensure_open(locked)
    form = link.questionnaire.form
    section = form.section(section_code)
    if section is None:
        raise ValidationError({"section": ["Unknown section."]})
    draft = dict(locked.draft_answers)
    cleaned = form.clean(raw, sections=[section], context=draft, complete=complete)
    for question in section.questions:
        draft.pop(question.code, None)
    draft.update(cleaned)
    # A changed answer can switch later questions off; their old answers must go.
    draft = _drop_disabled(form, draft)
    locked.draft_answers = draft
    locked.draft_saved_at = timezone.now()
    locked.save(update_fields=["draft_answers", "draft_saved_at"])
    link.draft_answers, link.draft_saved_at = locked.draft_answers, locked.draft_saved_at
    return draft


def _drop_disabled(form: Form, answers: dict) -> dict:
    kept: dict = {}
    for section in form.sections:
        for question in section.questions:
            if question.code in answers and question.is_enabled(kept):
                kept[question.code] = answers[question.code]
    return kept


def _ensure_open(link: IntakeLink) -> None:
    if link.status != IntakeLinkStatus.OPEN:
        raise LinkUnavailableError(link.status)
    if link.expires_at <= timezone.now():
        raise LinkUnavailableError("expired")


@transaction.atomic
def intake_submit(
    *, link: IntakeLink, answers: dict | None = None, ip_address: str | None = None, user_agent: str = ""
) -> IntakeSubmission:
    """Validate the whole intake against the link's questionnaire version, store it, raise flags.

    `answers` defaults to the saved draft. All or nothing: a refused submission
    writes no row; a link accepts exactly one submission (row lock, then re-check).
    """
    locked = IntakeLink.objects.select_for_update().select_related("questionnaire", "patient").get(pk=link.pk)
    _ensure_open(locked)
    form = locked.questionnaire.form
    cleaned = form.clean(locked.draft_answers if answers is None else answers, complete=True)
    now = timezone.now()
    submission = IntakeSubmission(
        clinic_id=locked.clinic_id,
        patient=locked.patient,
        link=locked,
        questionnaire=locked.questionnaire,
        answers=cleaned,
        signature_name=cleaned.get("signature_name", ""),
        consented_at=now,
        submitted_at=now,
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:200],
    )
    submission.full_clean()
    submission.save()
    locked.status = IntakeLinkStatus.SUBMITTED
    locked.submitted_at = now
    locked.draft_answers = {}
    locked.save(update_fields=["status", "submitted_at", "draft_answers"])
    flags = flags_raise(submission=submission)
    urgent_intake_alert_create(link=locked, submission=submission, flags=flags)
    messages_cancel_about(about=locked, kinds=[MessageKind.INTAKE_NUDGE], reason="intake submitted")
    webhook_event_emit(
        clinic=locked.clinic,
        event=WebhookEventType.INTAKE_SUBMITTED,
        payload={"submission_id": submission.pk, "patient_id": submission.patient_id},
    )
    transaction.on_commit(lambda: intake_submitted.send(sender=IntakeSubmission, submission_id=submission.pk))
    return submission


def intake_nudge_still_applies(message, link: IntakeLink | None) -> str:
    """The outbox's last check before nudging: '' while the intake is still open to fill in."""
    if link is None:
        return "intake link no longer exists"
    if link.status == IntakeLinkStatus.SUBMITTED:
        return "intake already submitted"
    if link.status == IntakeLinkStatus.REVOKED:
        return "intake link revoked"
    if link.expires_at <= timezone.now():
        return "intake link expired"
    return ""


# --- flags ----------------------------------------------------------------------------


def flags_raise(*, submission: IntakeSubmission) -> list[PatientFlag]:
    """Flags for every rule the submission hits; an identical flag still in force is not repeated."""
    form = submission.questionnaire.form
    created = []
    for hit in screen(form, submission.answers):
        existing = PatientFlag.objects.active().filter(
            patient=submission.patient, rule_code=hit.rule.code, region=hit.region, side=hit.side
        )
        if existing.exists():
            continue
        flag = PatientFlag(
            clinic_id=submission.clinic_id,
            patient=submission.patient,
            submission=submission,
            rule_code=hit.rule.code,
            severity=FlagSeverity(hit.rule.severity),
            title=hit.rule.title[:200],
            reason=hit.reason,
            region=hit.region,
            side=hit.side,
        )
        flag.full_clean()
        flag.save()
        created.append(flag)
    return created


@transaction.atomic
def flag_acknowledge(*, flag: PatientFlag, by: User) -> PatientFlag:
    """A therapist has read the flag. Idempotent: the first acknowledgement is the one kept."""
    now = timezone.now()
    PatientFlag.objects.filter(pk=flag.pk, acknowledged_at__isnull=True).update(acknowledged_at=now, acknowledged_by=by)
    flag.refresh_from_db()
    return flag


@transaction.atomic
def flag_clear(*, flag: PatientFlag, by: User, reason: str) -> PatientFlag:
    """A clinician lifts the flag (e.g. DVT ruled out by a doctor); safety checks stop applying it.

    The reason is required and kept with who and when; clearing also acknowledges.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the flag no longer applies."]})
    now = timezone.now()
    PatientFlag.objects.filter(pk=flag.pk, acknowledged_at__isnull=True).update(acknowledged_at=now, acknowledged_by=by)
    updated = PatientFlag.objects.filter(pk=flag.pk, cleared_at__isnull=True).update(
        cleared_at=now, cleared_by=by, cleared_reason=reason
    )
    if not updated:
        raise ValidationError({"cleared_at": ["This flag was already cleared."]})
    flag.refresh_from_db()
    return flag
