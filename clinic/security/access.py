"""Who may open a patient's clinical record (notes, intake answers, pain series, exports).

Owners always may. Receptionists never see clinical content. A therapist may when they have
a care relationship with the patient, made only of facts they cannot create alone for the
purpose (`care_relationship`, one definition for the per-patient check and the list filter;
sessions, which knows visits and notes, registers it: `sessions.selectors.care_relationship_q`):

- an appointment of the patient with the therapist's practitioner profile that someone else
  put there (`booked_by` is another user, or empty: an API key, the patient accepting a
  waitlist offer), not cancelled and not a no-show: either still to come (booked or
  confirmed, not yet ended), or attended (arrived or completed) within the last 18 months
  (`USUAL_WINDOW`). Moving an appointment to another practitioner makes the mover its booker;
- a note of a visit in the window that the therapist signed (signing needed access already);
- a note of a visit in the window that someone else opened in the therapist's name (an
  owner assigning it, or an integration's key): only owners write notes for a colleague.

Booking the patient with oneself (then cancelling it, or marking it done), moving a
colleague's booking onto oneself, and drafts one opened oneself count for nothing. Any other
therapist opens emergency ("break-glass") access with a written reason; it lasts a few hours,
is audited as such and waits in the owner's review list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

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


CareRelationship = Callable[..., Q]
_care_relationship: CareRelationship | None = None


def care_relationship_register(rule: CareRelationship) -> None:
    """The app that knows visits and notes (sessions) says which of its facts make a care
    relationship, from its AppConfig.ready(): `rule(user=, clinic_id=, patient=, now=)` returns a
    filter on the patient's id (`patient` is an `OuterRef` to it). The core knows no domain."""
    global _care_relationship
    _care_relationship = rule


def care_relationship(*, user, clinic_id, patient: OuterRef, now: dt.datetime) -> Q:
    """The facts that make `user` one of the patient's usual practitioners (see the module's
    docstring), as the registered rule builds them. The per-patient check and the list filter
    both use it, so the two cannot drift. With no rule registered, only break-glass opens a record."""
    if _care_relationship is None:
        return Q(pk__in=[])
    return _care_relationship(user=user, clinic_id=clinic_id, patient=patient, now=now)


def is_usual_practitioner(*, user, patient) -> bool:
    """A care relationship with the patient (see `care_relationship`): one query."""
    relationship = care_relationship(user=user, clinic_id=patient.clinic_id, patient=OuterRef("pk"), now=timezone.now())
    return type(patient).objects.filter(pk=patient.pk).filter(relationship).exists()


def visible_patients_q(*, user, clinic, field: str = "patient") -> Q:
    """Rows (by their `field` patient) a therapist may read without breaking the glass, or with an
    open grant: the same rule as `clinical_access_check`, as one filter for list endpoints.

    Correlated EXISTS per row, not `patient IN (...)`: the IN form built the set of every patient
    the therapist saw in the window (thousands of appointments) on every request, while EXISTS
    probes the patient's own appointments by index for just the rows of the page."""
    now = timezone.now()
    patient = OuterRef(f"{field}_id" if field else "pk")
    clinic_id = getattr(clinic, "pk", clinic)
    grant = BreakGlassAccess.objects.filter(clinic_id=clinic_id, patient_id=patient, user=user, expires_at__gt=now)
    return care_relationship(user=user, clinic_id=clinic_id, patient=patient, now=now) | Exists(grant)


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


def clinical_access_enforce(*, request=None, patient, via: str, user=None, role: Role | None | object = ...) -> str:
    """`clinical_access_check` for a request or a service's actor, with the refusal audited as denied.

    `user` is the acting user (default: the request's). API keys carry no user: the `clinical`
    scope their view demands is their permission. `role`, when the caller knows it already.
    """
    if user is None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return "api_key"
    if role is ...:
        # The request resolved its user's role in its clinic already (ClinicAccess).
        clinic = getattr(request, "clinic", None)
        known = clinic is not None and clinic.pk == patient.clinic_id and hasattr(request, "role")
        if known and getattr(request, "user", None) == user:
            role = Role(request.role) if request.role else None
    try:
        return clinical_access_check(user=user, patient=patient, role=role)
    except PermissionDenied as refused:
        audit_record(
            action=AuditAction.DENIED, obj=patient, request=request, actor=user, via=via,
            reason=f"{request.method} {request.path}" if request is not None else "",
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
