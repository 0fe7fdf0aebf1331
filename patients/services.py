"""Patient operations: create (with the duplicate check), update, archive, merge."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clinic.models import AuditAction, Clinic, TombstoneReason, User, WebhookEventType
from clinic.security.audit import audit_record
from clinic.tombstones import tombstones_record
from clinic.webhooks.delivery import webhook_event_emit
from patients.models import Patient


def _emit(patient: Patient, event: WebhookEventType) -> None:
    # Ids only: a receiver that needs the record fetches it with its API key.
    webhook_event_emit(clinic=patient.clinic, event=event, payload={"patient_id": patient.pk})


CONSENT_FIELDS = {"email_consent": "email", "sms_consent": "sms"}
MERGE_FIELDS = (
    "preferred_name", "birth_date", "gender_text", "email", "mobile_phone", "address_line1", "address_line2",
    "city", "region", "postal_code", "country", "emergency_contact_name", "emergency_contact_phone",
)  # fmt: skip


class DuplicatePatientError(Exception):
    """Creating this patient would probably duplicate `matches`; confirm to create anyway."""

    def __init__(self, matches: list[Patient]):
        super().__init__(f"{len(matches)} possible duplicate(s)")
        self.matches = matches


def patient_find_duplicates(
    *,
    clinic: Clinic,
    given_name: str = "",
    family_name: str = "",
    birth_date=None,
    email: str = "",
    mobile_phone: str = "",
    exclude_id: int | None = None,
) -> list[Patient]:
    """Patients of the clinic with the same name and birth date, or the same email or mobile phone."""
    match = Q(pk__in=[])
    if given_name and family_name and birth_date:
        match |= Q(
            given_name__iexact=given_name.strip(), family_name__iexact=family_name.strip(), birth_date=birth_date
        )
    if email:
        match |= Q(email__iexact=email.strip())
    if mobile_phone:
        match |= Q(mobile_phone=str(mobile_phone))
    found = Patient.objects.filter(clinic=clinic, merged_into__isnull=True).filter(match)
    if exclude_id:
        found = found.exclude(pk=exclude_id)
    return list(found.order_by("id")[:10])


def _stamp_consents(patient: Patient, before: dict[str, bool], source: str) -> None:
    """Record when and how each reminder consent was given or withdrawn."""
    now = timezone.now()
    for field, channel in CONSENT_FIELDS.items():
        if getattr(patient, field) != before.get(field, False):
            setattr(patient, f"{channel}_consent_at", now)
            setattr(patient, f"{channel}_consent_source", source[:60])


@transaction.atomic
def patient_create(
    *, clinic: Clinic, data: dict[str, Any], allow_duplicate: bool = False, source: str = "staff"
) -> Patient:
    """A new patient. Raises DuplicatePatientError unless `allow_duplicate` (the person confirmed it)."""
    patient = Patient(clinic=clinic, **data)
    _stamp_consents(patient, {}, source)
    patient.full_clean()
    if not allow_duplicate:
        matches = patient_find_duplicates(
            clinic=clinic,
            given_name=patient.given_name,
            family_name=patient.family_name,
            birth_date=patient.birth_date,
            email=patient.email,
            mobile_phone=str(patient.mobile_phone or ""),
        )
        if matches:
            raise DuplicatePatientError(matches)
    patient.save()
    _emit(patient, WebhookEventType.PATIENT_CREATED)
    return patient


@transaction.atomic
def patient_update(*, patient: Patient, data: dict[str, Any], source: str = "staff") -> Patient:
    before = {field: getattr(patient, field) for field in CONSENT_FIELDS}
    for name, value in data.items():
        setattr(patient, name, value)
    _stamp_consents(patient, before, source)
    patient.full_clean()
    patient.save()
    _emit(patient, WebhookEventType.PATIENT_UPDATED)
    return patient


@transaction.atomic
def patient_archive(*, patient: Patient) -> Patient:
    if not patient.is_archived:
        patient.is_archived = True
        patient.archived_at = timezone.now()
        patient.full_clean()
        patient.save(update_fields=["is_archived", "archived_at", "updated_at"])
        _emit(patient, WebhookEventType.PATIENT_UPDATED)
    return patient


@transaction.atomic
def patient_unarchive(*, patient: Patient) -> Patient:
    patient = Patient.objects.select_for_update().get(pk=patient.pk)  # an erasure may be committing
    if patient.erased_at is not None:
        raise ValidationError({"is_archived": ["This record was erased; an erased record cannot be restored."]})
    if patient.merged_into_id:
        raise ValidationError({"is_archived": ["This record was merged into another; use that one."]})
    if patient.is_archived:
        patient.is_archived = False
        patient.archived_at = None
        patient.save(update_fields=["is_archived", "archived_at", "updated_at"])
        _emit(patient, WebhookEventType.PATIENT_UPDATED)
    return patient


@transaction.atomic
def patient_merge(*, source: Patient, target: Patient, by: User | None = None, request=None, via: str = "") -> Patient:
    """Move everything of `source` (links, submissions, flags, appointments, ...) to `target`.

    Every foreign key to Patient is moved, whichever app declares it, so an app added
    later merges too. Blank contact fields of the target are filled from the source;
    the source stays as an archived record pointing at the target.
    """
    if source.pk == target.pk:
        raise ValidationError({"target": ["Choose two different patients."]})
    if source.clinic_id != target.clinic_id:
        raise ValidationError({"target": ["Both patients must belong to the same clinic."]})
    source, target = (
        Patient.objects.select_for_update().get(pk=source.pk),
        Patient.objects.select_for_update().get(pk=target.pk),
    )
    if source.merged_into_id or target.merged_into_id:
        raise ValidationError({"target": ["One of these records was already merged."]})
    for relation in Patient._meta.related_objects:
        if relation.related_model is Patient or relation.many_to_many:
            continue
        relation.related_model._base_manager.filter(**{relation.field.name: source}).update(
            **{relation.field.name: target}
        )
    for name in MERGE_FIELDS:
        if not getattr(target, name) and getattr(source, name):
            setattr(target, name, getattr(source, name))
    for field, channel in CONSENT_FIELDS.items():
        if getattr(source, field) and not getattr(target, field):
            setattr(target, field, True)
            for suffix in ("_at", "_source"):
                setattr(target, f"{channel}_consent{suffix}", getattr(source, f"{channel}_consent{suffix}"))
    # The target takes over the contact details; clear them on the source so the
    # duplicate check and search stop finding the merged-away record.
    source.email, source.mobile_phone = "", ""
    source.email_consent = source.sms_consent = False
    source.is_archived = True
    source.archived_at = source.archived_at or timezone.now()
    source.merged_into = target
    source.full_clean()
    source.save()
    target.full_clean()
    target.save()
    _emit(source, WebhookEventType.PATIENT_UPDATED)
    _emit(target, WebhookEventType.PATIENT_UPDATED)
    tombstones_record(
        clinic=target.clinic, model=Patient, ids=[source.pk], reason=TombstoneReason.MERGED, scope="patients",
        replaced_by=target.pk,
    )  # fmt: skip
    audit_record(
        action=AuditAction.CHANGE, obj=target, patient_id=target.pk, actor=by, request=request, via=via,
        reason=f"Merged patient #{source.pk} into this record.", extra={"merged_from": source.pk},
    )  # fmt: skip
    return target
