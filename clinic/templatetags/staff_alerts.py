"""`{% unopened_staff_alerts as alerts %}`: the signed-in staff member's alerts not yet opened
(the admin landing page lists them above the apps)."""

from __future__ import annotations

from django import template

from clinic.models import Message, MessageStatus

register = template.Library()

SHOWN = 20


@register.simple_tag(takes_context=True)
def unopened_staff_alerts(context) -> list[Message]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    # Served by the index Django puts on the to_user foreign key (a user has few alerts).
    return list(
        Message.objects.filter(to_user=user, opened_at__isnull=True)
        .exclude(status=MessageStatus.CANCELLED)
        .order_by("-created_at")[:SHOWN]
    )
