"""Who may open a patient's clinical record (notes, intake answers, clinical summary).

Owners always may. A therapist may when they are one of the patient's usual
practitioners (booked with them in the last 18 months or upcoming). Any other
therapist must open emergency ("break-glass") access with a written reason; the
access lasts a few hours, is audited as such and waits in the owner's review list.
Receptionists never see clinical content.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from clinic.models import AuditAction, BreakGlassAccess, Membership
from clinic.security.audit import audit_record
from clinic.security.roles import Role

USUAL_WINDOW = dt.timedelta(days=548)
BREAK_GLASS_HOURS = 4
MIN_REASON = 15


class BreakGlassRequired(PermissionDenied):
    """The caller is clinical staff but not this patient's usual practitioner."""


def role_in(*, user, clinic) -> Role | None:
    role = Membership.objects.filter(user=user, clinic=clinic, is_active=True).values_list("role", flat=True).first()
    return Role(role) if role else None


def is_usual_practitioner(*, user, patient) -> bool:
    """Booked with them, or treated by them (a session they wrote), in the window or upcoming."""
    from sessions.models import Appointment, TreatmentSession

    since = timezone.now() - USUAL_WINDOW
    return (
        Appointment.objects.filter(
            patient=patient, practitioner__user=user, clinic_id=patient.clinic_id, start__gte=since
        ).exists()
        or TreatmentSession.objects.filter(
            patient=patient, practitioner__user=user, clinic_id=patient.clinic_id, started_at__gte=since
        ).exists()
    )


def visible_patients_q(*, user, clinic, field: str = "patient") -> Q:
    """Rows (by their `field` patient) a therapist may read without breaking the glass, or with an
    open grant: the same rule as `clinical_access_check`, as one filter for list endpoints.

    Correlated EXISTS per row, not `patient IN (...)`: the IN form built the set of every patient
    the therapist saw in the window (thousands of appointments) on every request, while EXISTS
    probes the patient's own appointments by index for just the rows of the page."""
    from sessions.models import Appointment, TreatmentSession

    now = timezone.now()
    since = now - USUAL_WINDOW
    patient = OuterRef(f"{field}_id" if field else "pk")
    clinic_id = getattr(clinic, "pk", clinic)
    mine = {"clinic_id": clinic_id, "patient_id": patient}
    return (
        Exists(Appointment.objects.filter(**mine, practitioner__user=user, start__gte=since))
        | Exists(TreatmentSession.objects.filter(**mine, practitioner__user=user, started_at__gte=since))
        | Exists(BreakGlassAccess.objects.filter(**mine, user=user, expires_at__gt=now))
    )


def scope_clinical_rows(queryset, *, user, clinic, role, field: str = "patient"):
    """Lists of clinical rows: therapists see the patients they may open; owners (and API keys,
    which the clinical scope governs) see the clinic's rows; any other role sees nothing."""
    if user is None or not user.is_authenticated or role == Role.OWNER:
        return queryset
    if role != Role.THERAPIST:
        return queryset.none()
    return queryset.filter(visible_patients_q(user=user, clinic=clinic, field=field))


def open_break_glass(*, user, patient) -> BreakGlassAccess | None:
    return (
        BreakGlassAccess.objects.filter(user=user, patient=patient, expires_at__gt=timezone.now())
        .order_by("-expires_at")
        .first()
    )


def clinical_access_check(*, user, patient, role: Role | None | object = ...) -> str:
    """Return how access is granted ('owner', 'usual', 'break_glass') or raise.

    Raises PermissionDenied for non-clinical roles and BreakGlassRequired for a
    therapist who needs to give a reason first. `role` is the user's role in the
    patient's clinic when the caller already knows it (a request resolved it).
    """
    if role is ...:
        role = role_in(user=user, clinic=patient.clinic_id)
    if role == Role.OWNER:
        return "owner"
    if role != Role.THERAPIST:
        raise PermissionDenied("Only clinical staff can see clinical records.")
    if is_usual_practitioner(user=user, patient=patient):
        return "usual"
    if open_break_glass(user=user, patient=patient) is not None:
        return "break_glass"
    raise BreakGlassRequired(
        "You are not this patient's usual practitioner: open emergency access with a reason to see the record."
    )


def scope_clinical_rows_for_staff(queryset, *, user, field: str = "patient"):
    """The admin's lists of clinical rows, across every clinic the user belongs to: all of the
    clinics they own, and the patients they may open in the clinics where they treat."""
    if user.is_superuser:
        return queryset
    allowed = Q(pk__in=[])
    for clinic_id, role in Membership.objects.filter(user=user, is_active=True).values_list("clinic_id", "role"):
        if role == Role.OWNER:
            allowed |= Q(clinic_id=clinic_id)
        elif role == Role.THERAPIST:
            allowed |= Q(clinic_id=clinic_id) & visible_patients_q(user=user, clinic=clinic_id, field=field)
    return queryset.filter(allowed)


ADMIN_BREAK_GLASS_MESSAGE = (
    "You are not this patient's usual practitioner, so the clinical record is hidden. To see it, open "
    "emergency access with a reason (POST /api/v1/break-glass/); the owner reviews every such access."
)


def clinical_access_enforce(*, request, patient, via: str) -> str:
    """`clinical_access_check` for a request, with the refusal audited as denied.

    API keys carry no user: the `clinical` scope their view demands is their permission.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "api_key"
    # The request resolved the user's role in its clinic already (ClinicAccess).
    clinic = getattr(request, "clinic", None)
    known = clinic is not None and clinic.pk == patient.clinic_id and hasattr(request, "role")
    role = (Role(request.role) if request.role else None) if known else ...
    try:
        return clinical_access_check(user=user, patient=patient, role=role)
    except PermissionDenied as refused:
        audit_record(
            action=AuditAction.DENIED, obj=patient, request=request, via=via,
            reason=f"{request.method} {request.path}",
            extra={"why": "break_glass_required" if isinstance(refused, BreakGlassRequired) else "role"},
        )  # fmt: skip
        raise


@transaction.atomic
def break_glass_open(*, user, patient, reason: str, request=None) -> BreakGlassAccess:
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise ValidationError({"reason": [f"Say why you need this record (at least {MIN_REASON} characters)."]})
    if role_in(user=user, clinic=patient.clinic) != Role.THERAPIST:
        raise PermissionDenied("Emergency access is for therapists of this clinic.")
    now = timezone.now()
    access = BreakGlassAccess(
        clinic=patient.clinic,
        user=user,
        patient=patient,
        reason=reason,
        opened_at=now,
        expires_at=now + dt.timedelta(hours=BREAK_GLASS_HOURS),
    )
    access.full_clean()
    access.save()
    audit_record(
        action=AuditAction.BREAK_GLASS, obj=patient, clinic=patient.clinic, actor=user, request=request,
        via="api" if request is not None and request.path.startswith("/api/") else "admin", reason=reason,
    )  # fmt: skip
    return access


@transaction.atomic
def break_glass_review(*, access: BreakGlassAccess, reviewer) -> BreakGlassAccess:
    if role_in(user=reviewer, clinic=access.clinic) != Role.OWNER:
        raise PermissionDenied("Owners review emergency access.")
    updated = BreakGlassAccess.objects.filter(pk=access.pk, reviewed_at__isnull=True).update(
        reviewed_at=timezone.now(), reviewed_by=reviewer
    )
    access.refresh_from_db()
    if not updated:
        raise ValidationError("This access was already reviewed.")
    return access
