"""Patient rights: export everything held about a patient, erase their identity, apply retention.

- `patient_export` gathers one patient's demographics, consents and opt-outs, intake
  submissions, notes (with entries, pain scores and addenda), appointments and messages as
  a FHIR R4 `collection` Bundle, every resource and the Bundle validated with `fhir.resources`
  at runtime (the FHIR API serves the same mappers unvalidated); `patient_export_html`
  renders the same data as a readable page. Every export is audited.
- `patient_erase` anonymises identity and contact data (names, birth date, contact details,
  address, emergency contact, message recipients and bodies, the typed intake signature and
  the submitting device) and keeps clinical records. Owners only; audited; the patient is
  archived and stamped with when and by whom.
- `retention_apply` removes erased patients, with their clinical records and remaining rows,
  once the clinic's `retention_years` have passed since their last visit. Signed notes are
  locked by database triggers; the deletion sets the session-local `clinic.retention_purge`
  that the lock functions honour for DELETE only (see sessions migration 0004).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Expression
from django.template.loader import render_to_string
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from clinic.models import AuditAction, BreakGlassAccess, Clinic, Message, MessageStatus, OptOut, TombstoneReason
from clinic.security.access import role_in
from clinic.security.audit import audit_record
from clinic.security.roles import Role
from clinic.tombstones import tombstones_record
from patients.fhir import patient_to_fhir
from patients.models import Patient

ERASED_GIVEN_NAME = "Erased"
_MESSAGE_STATUS = {
    MessageStatus.SCHEDULED: "preparation",
    MessageStatus.SENDING: "in-progress",
    MessageStatus.SENT: "completed",
    MessageStatus.FAILED: "stopped",
    MessageStatus.CANCELLED: "not-done",
    MessageStatus.SKIPPED: "not-done",
}


# --- export ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordPart:
    """One app's share of everything held about a patient. Apps above this one (intake,
    sessions) register theirs with `record_part_register` from their AppConfig.ready(), so
    export, erasure and retention reach every row without this app importing them.

    - `load(patient) -> dict`: its rows, loaded once for both export formats;
    - `fhir(loaded) -> [resource]`: its FHIR resources for the export Bundle;
    - `html_template`: renders its sections of the HTML export from `part` (what `load` returned);
    - `anonymise(patient, by=, now=) -> counts`: blank the identity data it holds;
    - `purge_counts(people) -> counts` and `purge(people)`: what retention removes, and removing it;
    - `last_visits`: annotations on Patient whose latest value is a visit, for retention.
    """

    name: str
    load: Callable[[Patient], dict]
    fhir: Callable[[dict], list[dict]]
    html_template: str
    anonymise: Callable[..., dict]
    purge_counts: Callable[[list[Patient]], dict]
    purge: Callable[[list[Patient]], None]
    last_visits: dict[str, Expression] = field(default_factory=dict)


_PARTS: dict[str, RecordPart] = {}


def record_part_register(part: RecordPart) -> None:
    _PARTS[part.name] = part


def record_parts() -> list[RecordPart]:
    """In registration order (INSTALLED_APPS order of the apps' ready())."""
    return list(_PARTS.values())


@dataclass(frozen=True)
class PatientRecord:
    """Everything held about one patient, loaded once for both export formats."""

    patient: Patient
    opt_outs: list
    messages: list
    parts: dict[str, dict]


def patient_record(*, patient: Patient) -> PatientRecord:
    return PatientRecord(
        patient=patient,
        opt_outs=list(OptOut.objects.filter(patient=patient).order_by("created_at")),
        messages=list(Message.objects.filter(patient=patient).order_by("due_at", "id")),
        parts={part.name: part.load(patient) for part in record_parts()},
    )


def _consents(patient: Patient, opt_outs: list) -> list[dict]:
    resources = []
    for channel, given, at, source in (
        ("email", patient.email_consent, patient.email_consent_at, patient.email_consent_source),
        ("sms", patient.sms_consent, patient.sms_consent_at, patient.sms_consent_source),
    ):
        resource = {
            "resourceType": "Consent",
            "id": f"{channel}-{patient.pk}",
            "status": "active" if given else "inactive",
            "scope": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
            "patient": {"reference": f"Patient/{patient.pk}"},
            "policyRule": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "OPTIN" if given else "OPTOUT",
                    }
                ]
            },
            "provision": {"type": "permit" if given else "deny", "action": [{"text": f"contact by {channel}"}]},
        }
        if at:
            resource["dateTime"] = at.isoformat()
        if source:
            resource["provision"]["action"][0]["text"] += f" (given via {source})"
        resources.append(resource)
    for opt_out in opt_outs:
        resources.append(
            {
                "resourceType": "Consent",
                "id": f"opt-out-{opt_out.pk}",
                "status": "active",
                "scope": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
                    ]
                },
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": f"Patient/{patient.pk}"},
                "dateTime": opt_out.created_at.isoformat(),
                "policyRule": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]
                },
                "provision": {
                    "type": "deny",
                    "action": [{"text": f"contact by {opt_out.channel} ({opt_out.get_source_display()})"}],
                },
            }
        )
    return resources


def _communication(message: Message) -> dict:
    resource = {
        "resourceType": "Communication",
        "id": str(message.pk),
        "status": _MESSAGE_STATUS[MessageStatus(message.status)],
        "category": [{"text": message.get_kind_display()}],
        "medium": [{"text": message.get_channel_display()}],
        "subject": {"reference": f"Patient/{message.patient_id}"},
        "recipient": [{"reference": f"Patient/{message.patient_id}"}],
    }
    if message.sent_at:
        resource["sent"] = message.sent_at.isoformat()
    text = "\n\n".join(part for part in (message.subject, message.body) if part)
    if text:
        resource["payload"] = [{"contentString": text}]
    if message.recipient:
        resource["note"] = [{"text": f"Sent to {message.recipient}"}]
    return resource


def _validated(model, data: dict) -> dict:
    return model.model_validate(data).model_dump(mode="json", exclude_none=True)


def _validate_any(resource: dict) -> dict:
    return _validated(get_fhir_model_class(resource["resourceType"]), resource)


def patient_bundle(record: PatientRecord) -> dict:
    patient = record.patient
    resources = [patient_to_fhir(patient), *_consents(patient, record.opt_outs)]
    for part in record_parts():
        resources += part.fhir(record.parts[part.name])
    resources += [_communication(m) for m in record.messages]
    # Not a hot path: every resource is validated here, an invalid one is a 500, not a bad export.
    resources = [_validate_any(r) for r in resources]
    base = f"{settings.PUBLIC_BASE_URL}/fhir/R4"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": timezone.now().isoformat(),
        "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }
    return _validated(Bundle, bundle)


def patient_export(*, patient: Patient, export_format: str, request=None, actor=None, via: str = "api"):
    """The patient's record as a FHIR Bundle (dict) or an HTML page (str); the export is audited."""
    if export_format not in {"fhir", "html"}:
        raise ValidationError({"format": ["Use fhir or html."]})
    record = patient_record(patient=patient)
    audit_record(
        action=AuditAction.EXPORT, obj=patient, request=request, actor=actor, via=via,
        reason="Patient data export", extra={"format": export_format},
    )  # fmt: skip
    if export_format == "fhir":
        return patient_bundle(record)
    return patient_export_html(record)


def patient_export_html(record: PatientRecord) -> str:
    return render_to_string(
        "patients/export.html",
        {
            "record": record,
            "patient": record.patient,
            "parts": [{"template": part.html_template, "data": record.parts[part.name]} for part in record_parts()],
            "generated_at": timezone.now(),
        },
    )


# --- erasure --------------------------------------------------------------------------------

_BLANKED = (
    "preferred_name", "gender_text", "email", "mobile_phone", "address_line1", "address_line2", "city",
    "region", "postal_code", "country", "emergency_contact_name", "emergency_contact_phone",
)  # fmt: skip


@transaction.atomic
def patient_erase(*, patient: Patient, by, reason: str = "", request=None) -> Patient:
    """Anonymise identity and contact data; keep clinical records (notes, entries, pain
    scores, intake answers other than the signature, appointments as times and services).

    Also erases the archived duplicates merged into this patient (the same person).
    """
    if role_in(user=by, clinic=patient.clinic) != Role.OWNER:
        raise PermissionDenied("Only the clinic's owner can erase a patient.")
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    if locked.erased_at is not None:
        raise ValidationError("This patient was already erased.")
    now = timezone.now()
    erased = [locked.pk]
    for duplicate in Patient.objects.select_for_update().filter(merged_into=locked, erased_at__isnull=True):
        _anonymise(duplicate, by=by, now=now)
        erased.append(duplicate.pk)
    counts = _anonymise(locked, by=by, now=now)
    tombstones_record(clinic=locked.clinic, model=Patient, ids=erased, reason=TombstoneReason.ERASED, scope="patients")
    audit_record(
        action=AuditAction.ERASE, obj=locked, clinic=locked.clinic, actor=by, request=request,
        via="api" if request is not None else "admin", reason=reason or "Patient erasure request", extra=counts,
    )  # fmt: skip
    return locked


def _anonymise(patient: Patient, *, by, now: dt.datetime) -> dict:
    patient.given_name = ERASED_GIVEN_NAME
    patient.family_name = f"Patient {patient.pk}"
    patient.birth_date = None
    for name in _BLANKED:
        setattr(patient, name, "")
    patient.email_consent = patient.sms_consent = False
    if not patient.is_archived:
        patient.is_archived, patient.archived_at = True, now
    patient.erased_at, patient.erased_by = now, by
    patient.full_clean()
    patient.save()
    # Messages: who they went to and what they said; unsent ones will never go out now.
    Message.objects.filter(patient=patient, status__in=[MessageStatus.SCHEDULED, MessageStatus.SENDING]).update(
        status=MessageStatus.CANCELLED, reason="Patient erased", updated_at=now
    )
    messages = Message.objects.filter(patient=patient).update(
        recipient="", subject="", body="", context={}, last_error="", updated_at=now
    )
    counts = {"messages": messages}
    for part in record_parts():
        counts.update(part.anonymise(patient, by=by, now=now))
    return counts


# --- retention ------------------------------------------------------------------------------


def _years_before(moment: dt.datetime, years: int) -> dt.datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February in a year that has none
        return moment.replace(year=moment.year - years, day=28)


def retention_due(*, clinic: Clinic, now: dt.datetime):
    """Erased patients of the clinic whose last visit (session, or appointment that was not
    cancelled; their record's creation if they never came) is older than the retention period."""
    cutoff = _years_before(now, clinic.retention_years)
    visits = {name: value for part in record_parts() for name, value in part.last_visits.items()}
    patients = Patient.objects.filter(clinic=clinic, erased_at__isnull=False).annotate(**visits)
    due = []
    for patient in patients:
        visits_of = [getattr(patient, name) for name in visits]
        visits_of = [when for when in visits_of if when is not None]
        last = max(visits_of) if visits_of else patient.created_at
        if last < cutoff:
            due.append(patient)
    return due


@transaction.atomic
def retention_purge(*, patient: Patient) -> dict:
    """Remove one erased patient and everything still held about them (audit rows stay)."""
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.erased_at is None:
        raise ValidationError("Only erased patients are removed by retention.")
    people = [*Patient.objects.filter(merged_into=patient), patient]
    counts = {}
    for part in record_parts():
        counts.update(part.purge_counts(people))
    counts["messages"] = Message.objects.filter(patient__in=people).count()
    audit_record(
        action=AuditAction.DELETE, obj=patient, clinic=patient.clinic, via="retention",
        reason=f"Retention: erased and last visit more than {patient.clinic.retention_years} years ago",
        extra={**counts, "patients": [p.pk for p in people]},
    )  # fmt: skip
    # The apps above first (sessions before intake): later rows may point at earlier ones.
    for part in reversed(record_parts()):
        part.purge(people)
    Message.objects.filter(patient__in=people).delete()
    BreakGlassAccess.objects.filter(patient__in=people).delete()
    tombstones_record(
        clinic=patient.clinic, model=Patient, ids=[p.pk for p in people], reason=TombstoneReason.DELETED,
        scope="patients",
    )  # fmt: skip
    for person in people:  # duplicates first: they point at the patient they were merged into
        person.delete()
    return counts


def retention_apply(*, now: dt.datetime | None = None) -> list[int]:
    """Every clinic's due patients, one transaction each; returns the removed patients' ids."""
    now = now or timezone.now()
    removed = []
    for clinic in Clinic.objects.order_by("id"):
        for patient in retention_due(clinic=clinic, now=now):
            retention_purge(patient=patient)
            removed.append(patient.pk)
    return removed
