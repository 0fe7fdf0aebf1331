"""The staff page behind a staff alert's link (e.g. "an urgent intake answer needs review").

The email carries no clinical detail, only this link. Opening it needs a signed-in staff
member of the alert's clinic who is its recipient or an owner (anyone else: 404, the alert's
existence is not confirmed); the opening is audited (`view`, via `staff_alert`) and the first
one stamped on the row (`opened_at`), then the browser goes on to the alert's target page,
which applies its own access rules (clinical access for intake answers).
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

from clinic.models import Membership, Message
from clinic.security.audit import audit_record
from clinic.security.roles import Role


@require_GET
@staff_member_required
def staff_alert_open(request, pk: int):
    message = Message.objects.filter(pk=pk, to_user__isnull=False).select_related("clinic").first()
    if message is None:
        raise Http404
    role = (
        Membership.objects.filter(clinic_id=message.clinic_id, user=request.user, is_active=True)
        .values_list("role", flat=True)
        .first()
    )
    if role is None or (message.to_user_id != request.user.pk and role != Role.OWNER):
        raise Http404
    Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=timezone.now())
    audit_record(
        action="view", clinic=message.clinic, obj=message, patient_id=message.patient_id, request=request,
        via="staff_alert",
    )  # fmt: skip
    target = message.context.get("target", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None) or not target.startswith("/"):
        target = "/admin/"
    return redirect(target)
