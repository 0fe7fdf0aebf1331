"""The admin's logs stay logs: emergency access, webhook deliveries and messages are read, not
edited, and each keeps its own action (a merge once moved these methods between the classes)."""

from __future__ import annotations

import pytest
from django.contrib import admin

from clinic.models import BreakGlassAccess, Message, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_by_superuser(rf, admin_user):
    request = rf.get("/admin/")
    request.user = admin_user
    return request


@pytest.mark.parametrize("model", [BreakGlassAccess, WebhookDelivery, Message])
def test_logs_cannot_be_added_or_have_their_fields_edited(model, request_by_superuser):
    model_admin = admin.site._registry[model]
    assert not model_admin.has_add_permission(request_by_superuser)
    assert set(model_admin.get_readonly_fields(request_by_superuser)) >= {
        f.name for f in model._meta.fields if f.editable and not f.primary_key
    }


def test_emergency_access_is_reviewed_never_deleted(request_by_superuser):
    model_admin = admin.site._registry[BreakGlassAccess]
    assert not model_admin.has_delete_permission(request_by_superuser)
    assert callable(getattr(model_admin, "mark_reviewed", None))


def test_the_message_log_offers_resend_and_nothing_of_break_glass(request_by_superuser):
    model_admin = admin.site._registry[Message]
    assert model_admin.has_change_permission(request_by_superuser)  # the resend action needs it
    assert not hasattr(model_admin, "mark_reviewed")
