"""The admin home as a landing page per role: what each person needs first when they sign in.

Panels are registered, as ModelAdmins are, by the admin modules that know the rows:
`landing_panel_register(role=..., order=..., build=...)`. A builder gets the request and the
clinics in which the user holds that role and returns a `Panel` (or None to show nothing).
The core registers the owner's failed messages and break-glass reviews here; the sessions
admin adds the front desk's day, the therapist's Today and the owner's urgent flags (it may
import every app below it, the core may not).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.urls import reverse
from django.utils import timezone

from clinic.models import BreakGlassAccess, Clinic, Message, MessageStatus
from clinic.security.roles import Role
from clinic.security.signin import active_memberships

PANEL_ROWS = 10


@dataclass(frozen=True)
class PanelRow:
    text: str
    when: str = ""
    url: str = ""
    badge: str = ""  # "urgent" or "caution": a coloured label before the text
    detail: str = ""


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    rows: list[PanelRow] = field(default_factory=list)
    total: int | None = None  # rows in all, when more exist than are shown
    more_url: str = ""
    more_label: str = ""
    empty: str = "Nothing to show."
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, url) under the title


PanelBuilder = Callable[[object, list[Clinic]], Panel | None]
_PANELS: list[tuple[int, Role, PanelBuilder]] = []


def landing_panel_register(*, role: Role, order: int, build: PanelBuilder) -> None:
    if not any(existing is build and r == role for _, r, existing in _PANELS):
        _PANELS.append((order, Role(role), build))
        _PANELS.sort(key=lambda item: item[0])


def clinic_time(value: dt.datetime | None, clinic: Clinic, fmt: str = "%a %d %b %H:%M") -> str:
    """A timestamp as the clinic's wall clock, with the zone's abbreviation."""
    if value is None:
        return ""
    local = timezone.localtime(value, clinic.tz)
    return f"{local:{fmt}} {local.tzname()}"


def roles_of(request) -> dict[Role, list[Clinic]]:
    """The user's roles, each with the clinics in which they hold it; a superuser without a
    membership reads every active clinic as its owner."""
    held: dict[Role, list[Clinic]] = {}
    for membership in active_memberships(request):
        if membership.clinic.is_active:
            held.setdefault(Role(membership.role), []).append(membership.clinic)
    if not held and request.user.is_superuser:
        held[Role.OWNER] = list(Clinic.objects.filter(is_active=True).order_by("id"))
    return held


def landing_panels(request) -> list[Panel]:
    held = roles_of(request)
    panels = []
    for _order, role, build in _PANELS:
        clinics = held.get(role)
        if clinics:
            panel = build(request, clinics)
            if panel is not None:
                panels.append(panel)
    return panels


def landing_index(request, extra_context=None):
    roles = roles_of(request)
    context = {
        "landing_panels": landing_panels(request),
        "landing_roles": ", ".join(role.label for role in Role if role in roles),
        **(extra_context or {}),
    }
    return AdminSite.index(admin.site, request, context)


# The admin's URL map calls `site.index`; the landing page adds the panels to its context.
admin.site.index = landing_index
admin.site.index_template = "admin/clinic_index.html"
# "View site" was a 404: a staff member's other site is the API and its documentation.
admin.site.site_url = "/api/docs/"
# The app list fills the home page; as a sidebar on every page it took 300 px of a 1366 px
# screen and pushed list columns (appointments, patients) off the edge.
admin.site.enable_nav_sidebar = False


# --- the owner's panels that the core can fill ----------------------------------------------


def failed_messages_panel(request, clinics: list[Clinic]) -> Panel:
    rows = Message.objects.filter(clinic__in=clinics, status=MessageStatus.FAILED)
    total = rows.count()
    by_id = {c.pk: c for c in clinics}
    shown = rows.select_related("patient").order_by("-due_at")[:PANEL_ROWS]
    changelist = reverse("admin:clinic_message_changelist")
    return Panel(
        key="failed-messages",
        title="Failed messages",
        rows=[
            PanelRow(
                text=f"{m.get_kind_display()} by {m.get_channel_display()} to {m.patient}",
                when=clinic_time(m.due_at, by_id[m.clinic_id]),
                url=reverse("admin:clinic_message_change", args=[m.pk]),
                detail=(m.last_error or m.reason)[:120],
            )
            for m in shown
        ],
        total=total,
        more_url=f"{changelist}?status__exact={MessageStatus.FAILED}",
        more_label="All failed messages (select them and choose “send again”)",
        empty="No failed messages.",
    )


def break_glass_panel(request, clinics: list[Clinic]) -> Panel:
    rows = BreakGlassAccess.objects.filter(clinic__in=clinics, reviewed_at__isnull=True)
    total = rows.count()
    by_id = {c.pk: c for c in clinics}
    shown = rows.select_related("user", "patient").order_by("-opened_at")[:PANEL_ROWS]
    changelist = reverse("admin:clinic_breakglassaccess_changelist")
    return Panel(
        key="break-glass",
        title="Emergency (break-glass) access to review",
        rows=[
            PanelRow(
                text=f"{a.user} opened {a.patient}",
                when=clinic_time(a.opened_at, by_id[a.clinic_id]),
                url=reverse("admin:clinic_breakglassaccess_change", args=[a.pk]),
                detail=a.reason[:120],
            )
            for a in shown
        ],
        total=total,
        more_url=f"{changelist}?reviewed_at__isempty=1",
        more_label="Review them (select and choose “mark as reviewed”)",
        empty="No emergency access waiting for review.",
    )


landing_panel_register(role=Role.OWNER, order=20, build=failed_messages_panel)
landing_panel_register(role=Role.OWNER, order=30, build=break_glass_panel)
