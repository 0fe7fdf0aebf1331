"""Request id: taken from X-Request-ID when a proxy sets a sane one, else generated.

Audit records and logs carry it so one request can be followed across them.
"""

from __future__ import annotations

import re
import uuid

from django.utils import timezone

_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _SAFE.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


def staff_clinic(request):
    """The clinic whose wall clock a staff request reads and types times in.

    The clinic named by `X-Clinic` (its slug) or a `clinic` query parameter if the user works
    there, else the user's first active membership (lowest clinic id); a superuser without a
    membership gets the first active clinic. None for anonymous requests.
    """
    from clinic.models import Clinic
    from clinic.security.signin import active_memberships

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    wanted = request.headers.get("X-Clinic") or request.GET.get("clinic") or ""
    clinics = sorted((m.clinic for m in active_memberships(request) if m.clinic.is_active), key=lambda c: c.pk)
    if not clinics and user.is_superuser:
        clinics = list(Clinic.objects.filter(is_active=True).order_by("id")[:1])
    chosen = [c for c in clinics if c.slug == wanted]
    return (chosen or clinics or [None])[0]


class ClinicTimeZoneMiddleware:
    """Activate the staff member's clinic time zone for every admin request.

    Lists, forms, messages and e-mails rendered during the request show the clinic's wall-clock
    time, and a time typed in a form is read in that zone. Change pages narrow it to the clinic
    of the object shown and list columns render each row in its own clinic's zone
    (`clinic.admin.ClinicScopedAdmin`). The API and FHIR keep their wire format (ISO 8601 with
    an offset); their messages for people name the request's clinic zone themselves.
    """

    prefix = "/admin/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        clinic = staff_clinic(request) if request.path_info.startswith(self.prefix) else None
        if clinic is not None:
            timezone.activate(clinic.tz)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
