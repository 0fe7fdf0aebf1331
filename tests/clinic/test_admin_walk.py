"""No admin page shows a UTC time for a clinic row (issue 14, "Done when").

With the demo clinic in America/Toronto (UTC-5 in December), the test opens every registered
ModelAdmin's list and the change page of its first row, and looks for any timestamp of the
database rendered in UTC in the admin's formats ("Dec. 3, 2026, 5:16 p.m.", "2026-12-03 17:16",
a form's time input) where the clinic's wall clock would read differently. A UTC rendering that
happens to equal some row's clinic-time rendering is not evidence, so it is left out.
"""

from __future__ import annotations

import datetime as dt
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command
from django.db import models
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import formats

from clinic.models import Clinic, User
from clinic.security.access import break_glass_open
from clinic.services import api_key_create
from patients.models import Patient

pytestmark = pytest.mark.django_db

TORONTO = ZoneInfo("America/Toronto")


def renderings(value: dt.datetime, zone) -> set[str]:
    shown = value.astimezone(zone)
    naive = shown.replace(tzinfo=None)
    return {formats.localize(naive), f"{naive:%Y-%m-%d %H:%M}"}


def every_timestamp() -> list[dt.datetime]:
    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, models.DateTimeField)]
        for name in names:
            found += [v for v in model._default_manager.values_list(name, flat=True) if v is not None]
    return found


@pytest.fixture
def walker(db):
    call_command("seed_demo", stdout=StringIO())
    clinic = Clinic.objects.get(slug="demo")
    assert clinic.time_zone == "America/Toronto"
    # Rows the demo has none of, so their pages show times too.
    owner = User.objects.get(username="owner")
    ben = User.objects.get(username="ben")
    api_key_create(clinic=clinic, name="Booking site", scopes=["appointments:read"], created_by=owner)
    patient = Patient.objects.filter(clinic=clinic).exclude(treatment_sessions__practitioner__user=ben).first()
    break_glass_open(user=ben, patient=patient, reason="Covering for Ava, patient in pain")
    superuser = User.objects.create_superuser("root", "root@example.com", "x")
    client = Client()
    client.force_login(superuser)
    return client


def test_no_admin_list_or_change_page_shows_a_utc_time_for_a_clinic_row(walker):
    stamps = every_timestamp()
    local = set().union(*(renderings(v, TORONTO) for v in stamps))
    utc_only = set().union(*(renderings(v, dt.UTC) for v in stamps)) - local
    assert utc_only, "the demo data has timestamps"
    problems = []
    pages = 0
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        urls = [reverse("admin:{}_{}_changelist".format(*info))]
        first = model_admin.get_queryset(_request()).order_by("pk").first()
        if first is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
        for url in urls:
            response = walker.get(url)
            assert response.status_code == 200, (url, response.status_code)
            page = response.content.decode()
            pages += 1
            problems += [f"{url}: {text}" for text in utc_only if text in page]
            if first is not None and url.endswith("/change/"):
                problems += [f"{url}: {text}" for text in _form_times_in_utc(first, page)]
    assert pages > 40
    assert not problems, "\n".join(sorted(problems))


def _form_times_in_utc(obj, page: str) -> list[str]:
    """A change form's date and time inputs holding the UTC reading of the object's own times."""
    values = [getattr(obj, f.name) for f in obj._meta.concrete_fields if isinstance(f, models.DateTimeField)]
    values = [v for v in values if v is not None]
    local = {f'value="{v.astimezone(TORONTO):%H:%M:%S}"' for v in values}
    return [text for v in values if (text := f'value="{v.astimezone(dt.UTC):%H:%M:%S}"') not in local and text in page]


def _request():
    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(username="root")
    return request
