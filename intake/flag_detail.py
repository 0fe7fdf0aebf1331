"""What a screening flag shows to whom.

A flag's rule code, title, reason (which quotes the patient's answers), region, side and
cleared reason are clinical content. They are shown to owners, to therapists who may open
the patient's record (`clinic.security.access.visible_patients_q`, the rule every clinical read uses,
break-glass grants included) and to API keys with `clinical:read`. Everyone else who sees
flags (receptionists, other therapists, keys with only `intake:read` or `patients:read`)
gets the severity and a neutral line, e.g. "Urgent flag: review before treatment", enough
to warn the therapist without reading the patient's answers.

Lists compute the rule in the same query (`with_flag_detail` annotates `shows_detail`); a
flag without the annotation is checked on its own (`flag_shows_detail`).
"""

from __future__ import annotations

from django.db.models import BooleanField, ExpressionWrapper, Q, Value

from clinic.models import ApiKey, Membership
from clinic.security.access import visible_patients_q
from clinic.security.roles import Role
from intake.models import FlagSeverity, PatientFlag

CLINICAL_FIELDS = ("rule_code", "title", "reason", "region", "side", "cleared_reason")
NEUTRAL_TEXT = {
    FlagSeverity.URGENT: "Urgent flag: review before treatment",
    FlagSeverity.CAUTION: "Caution flag: review before treatment",
    FlagSeverity.INFO: "Information flag: review before treatment",
}


def flag_neutral_text(severity: str) -> str:
    return NEUTRAL_TEXT.get(severity, "Flag: review before treatment")


def flag_detail_rule(request) -> bool | Q:
    """For an API request: True or False when the caller decides, a per-patient Q for a therapist."""
    if request is None:
        return False
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return auth.has_scope("clinical:read")
    role = getattr(request, "role", None)
    user = getattr(request, "user", None)
    if role == Role.OWNER:
        return True
    if role == Role.THERAPIST and user is not None and user.is_authenticated:
        return visible_patients_q(user=user, clinic=request.clinic)
    return False


def flag_detail_rule_for_staff(user) -> bool | Q:
    """For the admin, across the user's clinics: the clinics they own, and in the clinics where
    they treat, the patients they may open (as `clinic.security.access.scope_clinical_rows_for_staff`)."""
    if user.is_superuser:
        return True
    allowed = Q(pk__in=[])
    for clinic_id, role in Membership.objects.filter(user=user, is_active=True).values_list("clinic_id", "role"):
        if role == Role.OWNER:
            allowed |= Q(clinic_id=clinic_id)
        elif role == Role.THERAPIST:
            allowed |= Q(clinic_id=clinic_id) & visible_patients_q(user=user, clinic=clinic_id)
    return allowed


def _annotate(queryset, rule: bool | Q):
    expression = Value(rule) if isinstance(rule, bool) else ExpressionWrapper(rule, output_field=BooleanField())
    return queryset.annotate(shows_detail=expression)


def with_flag_detail(queryset, request):
    """Flags annotated with `shows_detail` for the caller of an API request."""
    return _annotate(queryset, flag_detail_rule(request))


def with_flag_detail_for_staff(queryset, user):
    """Flags annotated with `shows_detail` for a staff member in the admin."""
    return _annotate(queryset, flag_detail_rule_for_staff(user))


def flag_shows_detail(flag: PatientFlag, request) -> bool:
    known = getattr(flag, "shows_detail", None)
    if known is not None:
        return bool(known)
    rule = flag_detail_rule(request)
    if isinstance(rule, bool):
        return rule
    return PatientFlag.objects.filter(pk=flag.pk).filter(rule).exists()


def flag_redact(data: dict, severity: str) -> dict:
    """A serialised flag without its clinical fields: title and reason become the neutral line."""
    for name in CLINICAL_FIELDS:
        if name in data:
            data[name] = ""
    neutral = flag_neutral_text(severity)
    for name in ("title", "reason"):
        if name in data:
            data[name] = neutral
    return data
