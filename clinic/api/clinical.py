"""The one way API views reach clinical content: `ClinicalAccessMixin` for views of clinical
rows (notes, pain series, intake answers, FHIR clinical resources, the patient export), and the
per-patient check and list filter they use. The rule itself is `clinic.security.access`."""

from __future__ import annotations

from rest_framework.exceptions import NotFound

from clinic.api.conventions import BreakGlassRequiredError
from clinic.models import AuditAction
from clinic.security.access import BreakGlassRequired, clinical_access_enforce, scope_clinical_rows
from clinic.security.audit import audit_record
from clinic.security.roles import CLINICAL_ROLES


def require_clinical_access(request, patient, *, via: str = "api") -> str:
    """Clinical content of one patient: owners and usual practitioners pass, other therapists get a
    403 telling them how to break the glass (audited as denied). See `clinic.security.access`."""
    try:
        return clinical_access_enforce(request=request, patient=patient, via=via)
    except BreakGlassRequired:
        raise BreakGlassRequiredError() from None


def scope_clinical_list(queryset, request, *, field: str = "patient"):
    """A therapist's list of clinical rows holds only the patients they may open."""
    return scope_clinical_rows(queryset, user=request.user, clinic=request.clinic, role=request.role, field=field)


class ClinicalAccessMixin:
    """Views of clinical content: clinical roles, or a key with the `clinical` scope. Anyone else
    (a receptionist, a key without the scope) gets a 404, as if nothing were there, and an audit
    record of the refusal (`audit_via` names the door: "api" or "fhir")."""

    allowed_roles = CLINICAL_ROLES
    api_scope = "clinical"
    audit_via = "api"

    def permission_denied(self, request, message=None, code=None):
        if getattr(request, "clinic", None) is not None:
            audit_record(
                action=AuditAction.DENIED, clinic=request.clinic, request=request, via=self.audit_via,
                reason=f"{request.method} {request.path}", extra={"role": request.role or "api-key"},
            )  # fmt: skip
            raise NotFound()
        super().permission_denied(request, message=message, code=code)
