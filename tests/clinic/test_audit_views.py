"""One "viewed" event per page a person opened (issue 14, item 7).

The trail logged four views for one note page: the add page showed the patient's flags on the
first GET and again on each of three refused saves. A form posted back to a page is not a new
opening; a reload or a later visit is.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client, RequestFactory

from clinic.models import AuditAction, AuditEvent
from clinic.security.audit import REPEAT_VIEW_WINDOW, audit_record
from tests.factories import AppointmentFactory, PatientFactory

pytestmark = pytest.mark.django_db

NOTE_ADD = "/admin/treatment_sessions/treatmentsession/add/"


def views(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.VIEW, **filters))


@pytest.fixture
def booked(clinic, practitioner):
    patient = PatientFactory(clinic=clinic)
    return AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner)


def test_the_note_add_page_and_three_refused_saves_are_one_view(therapist, booked):
    client = Client()
    client.force_login(therapist)
    url = f"{NOTE_ADD}?appointment={booked.pk}&patient={booked.patient_id}"
    assert client.get(url).status_code == 200
    for _ in range(3):
        refused = client.post(url, {"clinic": booked.clinic_id, "patient": booked.patient_id})
        assert refused.status_code == 200  # the form again, with its errors
    assert len(views(patient_id=booked.patient_id)) == 1


def test_opening_the_page_again_is_a_new_view(therapist, booked):
    client = Client()
    client.force_login(therapist)
    url = f"{NOTE_ADD}?patient={booked.patient_id}"
    client.get(url)
    client.get(url)
    assert len(views(patient_id=booked.patient_id)) == 2


def test_one_request_records_the_same_view_once(clinic, therapist):
    patient = PatientFactory(clinic=clinic)
    request = RequestFactory().get("/admin/")
    request.user = therapist
    first = audit_record(action=AuditAction.VIEW, obj=patient, request=request, via="admin")
    again = audit_record(action=AuditAction.VIEW, obj=patient, request=request, via="admin")
    other = audit_record(action=AuditAction.VIEW, obj=patient, request=request, via="admin", extra={"resource": "x"})
    assert again == first
    assert other != first
    assert len(views(patient_id=patient.pk)) == 2


def test_a_post_after_the_window_or_by_someone_else_is_recorded(clinic, therapist, owner, time_machine):
    patient = PatientFactory(clinic=clinic)
    time_machine.move_to(dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC))
    opened = RequestFactory().get("/admin/x/")
    opened.user = therapist
    audit_record(action=AuditAction.VIEW, obj=patient, request=opened, via="admin")

    def post(user):
        request = RequestFactory().post("/admin/x/")
        request.user = user
        return audit_record(action=AuditAction.VIEW, obj=patient, request=request, via="admin")

    post(therapist)
    assert len(views(patient_id=patient.pk)) == 1
    post(owner)
    assert len(views(patient_id=patient.pk)) == 2
    time_machine.move_to(dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC) + REPEAT_VIEW_WINDOW + dt.timedelta(seconds=1))
    post(therapist)
    assert len(views(patient_id=patient.pk)) == 3
