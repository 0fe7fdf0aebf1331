"""The therapist's admin: Today page, session page with flags, last session and pain chart,
entries with safety problems shown on the entry, signing, the lock and addenda, audit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from clinic.models import AuditAction, AuditEvent
from sessions.charts import PainPoint, pain_chart_svg
from sessions.models import MassageEntry, NoteStatus, TreatmentSession
from sessions.services import entry_add, note_sign
from tests.factories import AppointmentFactory, PatientFlagFactory, PractitionerFactory, TreatmentSessionFactory
from tests.sessions.conftest import needle

pytestmark = pytest.mark.django_db

BASE = "/admin/treatment_sessions/treatmentsession/"
PREFIXES = ("art_entries", "massage_entries", "acupuncture_entries", "home_care", "addenda")


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def form_data(session, **fields) -> dict:
    """A change-form POST: the note's editable fields and empty inline formsets."""
    data = {
        name: getattr(session, name) if getattr(session, name) is not None else ""
        for name in (
            "subjective", "objective", "assessment", "plan", "pain_before", "pain_after",
            "rebook_within_days", "course_sessions", "needle_incident",
        )
    }  # fmt: skip
    for prefix in PREFIXES:
        existing = list(getattr(session, prefix).values_list("id", flat=True)) if session.pk else []
        data |= {f"{prefix}-TOTAL_FORMS": str(len(existing)), f"{prefix}-INITIAL_FORMS": str(len(existing)),
                 f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}  # fmt: skip
        for index, pk in enumerate(existing):
            data |= {f"{prefix}-{index}-id": str(pk), f"{prefix}-{index}-session": str(session.pk)}
    return data | fields


def massage_row(region_id, **fields) -> dict:
    row = {"region": str(region_id), "side": "left", "technique": "stripping", "pressure": "3", "minutes": "10"}
    return {f"massage_entries-0-{k}": v for k, v in (row | fields).items()} | {"massage_entries-TOTAL_FORMS": "1"}


def events(action, **filters):
    return list(AuditEvent.objects.filter(action=action, **filters))


# --- reading --------------------------------------------------------------------------------


def test_session_page_shows_flags_last_session_and_pain_chart_and_is_audited(as_user, therapist, session):
    earlier = TreatmentSessionFactory(
        clinic=session.clinic, practitioner=session.practitioner, patient=session.patient,
        started_at=session.started_at - dt.timedelta(days=7), assessment="Soleus adhesions.", pain_before=8,
        pain_after=4, rebook_within_days=7,
    )  # fmt: skip
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="dvt_suspected", severity="urgent",
                       title="Possible DVT: refer before treatment", region="leg", side="left")  # fmt: skip
    response = as_user(therapist).get(f"{BASE}{session.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Possible DVT: refer before treatment" in page
    assert "Soleus adhesions." in page
    assert "re-book within 7 days" in page
    assert "<svg" in page
    assert "<polyline" in page
    assert "Sign and lock note" in page
    [view] = events(AuditAction.VIEW, object_id=str(session.pk))
    assert view.via == "admin"
    assert f"{earlier.started_at:%Y-%m-%d}" in page


def test_the_changelist_is_audited(as_user, owner, session):
    assert as_user(owner).get(BASE).status_code == 200
    [listed] = events(AuditAction.LIST)
    assert listed.extra["ids"] == [session.pk]


def test_a_receptionist_has_no_admin_access_and_the_attempt_is_audited(as_user, receptionist, session):
    client = as_user(receptionist)
    assert client.get(f"{BASE}{session.pk}/change/").status_code == 403
    assert client.get(BASE).status_code == 403
    assert client.get(f"{BASE}today/").status_code == 403
    denied = events(AuditAction.DENIED)
    assert len(denied) == 3
    assert [e.object_id for e in sorted(denied, key=lambda e: e.id)] == [str(session.pk), "", ""]
    assert not events(AuditAction.VIEW)


def test_another_clinics_therapist_cannot_open_the_note(as_user, other_therapist, session):
    response = as_user(other_therapist).get(f"{BASE}{session.pk}/change/")
    assert response.status_code in (302, 403)
    assert "Sharp calf pain" not in response.content.decode()
    assert not events(AuditAction.VIEW)
    [denied] = events(AuditAction.DENIED)
    assert denied.clinic_id is None  # nothing about the other clinic's note is recorded against it


def test_today_lists_my_sessions_and_unstarted_appointments_only(as_user, therapist, practitioner, clinic, session):
    colleague = PractitionerFactory(clinic=clinic)
    TreatmentSessionFactory(clinic=clinic, practitioner=colleague, patient=session.patient)
    start = timezone.now().astimezone(clinic.tz).replace(hour=15, minute=0, second=0, microsecond=0)
    booked = AppointmentFactory(
        clinic=clinic, practitioner=practitioner, start=start, end=start + dt.timedelta(hours=1)
    )
    yesterday = TreatmentSessionFactory(
        clinic=clinic, practitioner=practitioner, started_at=timezone.now() - dt.timedelta(days=2)
    )
    response = as_user(therapist).get(f"{BASE}today/")
    assert response.status_code == 200
    rows = response.context["days"][0]["rows"]
    assert [r.session.pk for r in rows if r.session] == [session.pk]
    assert [r.appointment.pk for r in rows if r.appointment] == [booked.pk]
    assert f"appointment={booked.pk}" in response.content.decode()
    assert yesterday.pk not in [r.session.pk for r in rows if r.session]
    [listed] = events(AuditAction.LIST)
    assert listed.extra == {"page": "today", "ids": [session.pk], "previous": []}


# --- writing ------------------------------------------------------------------------------


def test_a_safety_problem_shows_on_the_entry_and_nothing_is_saved(as_user, therapist, session):
    from treatments.models import BodyRegion

    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="dvt_suspected", severity="urgent",
                       region="leg", side="left")  # fmt: skip
    calf = BodyRegion.objects.get(code="calf")
    response = as_user(therapist).post(f"{BASE}{session.pk}/change/", form_data(session) | massage_row(calf.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Blocked: Suspected deep vein thrombosis" in page
    assert "Traceback" not in page
    assert not MassageEntry.objects.exists()


def test_a_warning_is_saved_with_the_written_reason(as_user, therapist, session):
    from treatments.models import BodyRegion

    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="anticoagulant_or_bleeding")
    calf = BodyRegion.objects.get(code="calf")
    client = as_user(therapist)
    warned = client.post(f"{BASE}{session.pk}/change/", form_data(session) | massage_row(calf.pk, pressure="5"))
    assert "Give a reason for this warning in the safety review" in warned.content.decode()
    reason = "INR checked today and in range; lighter pressure over bony areas."
    saved = client.post(
        f"{BASE}{session.pk}/change/",
        form_data(session, plan="Pressure kept moderate.")
        | massage_row(calf.pk, pressure="5")
        | {"massage_entries-0-override-anticoagulant_or_bleeding": reason},
    )
    assert saved.status_code == 302
    entry = MassageEntry.objects.get()
    assert (entry.override_reason, entry.overridden_rules) == (reason, ["anticoagulant_or_bleeding"])
    assert TreatmentSession.objects.get(pk=session.pk).plan == "Pressure kept moderate."
    changes = AuditEvent.objects.filter(action=AuditAction.CHANGE, object_id=str(session.pk)).order_by("id")
    assert [e.extra.get("op") for e in changes] == [None, "add"]  # the note's plan, then the entry


def test_a_new_session_is_created_through_the_service(
    as_user, therapist, practitioner, patient, receptionist, catalogs
):
    # The front desk booked the patient with Theo: he may open her record (see clinic.security.access).
    AppointmentFactory(clinic=practitioner.clinic, patient=patient, practitioner=practitioner, booked_by=receptionist)
    now = timezone.now().astimezone(practitioner.clinic.tz)
    data = form_data(TreatmentSession(), subjective="New complaint: heel pain.") | {
        "clinic": str(practitioner.clinic_id), "patient": str(patient.pk), "practitioner": str(practitioner.pk),
        "started_at_0": now.strftime("%Y-%m-%d"), "started_at_1": now.strftime("%H:%M:%S"),
    }  # fmt: skip
    response = as_user(therapist).post(f"{BASE}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    created = TreatmentSession.objects.get()
    assert (created.created_by, created.subjective) == (therapist, "New complaint: heel pain.")
    assert events(AuditAction.CREATE, object_id=str(created.pk))


def test_signing_from_the_admin_reports_each_problem(as_user, therapist, session):
    entry_add(entry=needle(session, inserted=1, removed=0), actor=therapist)
    client = as_user(therapist)
    response = client.post(f"{BASE}{session.pk}/sign/", follow=True)
    assert "Needle incident: Needles inserted and removed do not match" in response.content.decode()
    assert TreatmentSession.objects.get(pk=session.pk).status == NoteStatus.DRAFT
    session.acupuncture_entries.update(needles_removed=1)
    response = client.post(f"{BASE}{session.pk}/sign/", follow=True)
    assert "Note signed and locked." in response.content.decode()
    assert TreatmentSession.objects.get(pk=session.pk).is_signed


def test_editing_a_signed_note_changes_nothing_and_says_so(as_user, therapist, session):
    signed = note_sign(session=session, actor=therapist)
    client = as_user(therapist)
    page = client.get(f"{BASE}{session.pk}/change/").content.decode()
    assert "Sign and lock note" not in page
    response = client.post(
        f"{BASE}{session.pk}/change/", form_data(session, plan="Rewritten", **{"addenda-TOTAL_FORMS": "1"}), follow=True
    )
    assert "This note is signed and locked: nothing was changed." in response.content.decode()
    stored = TreatmentSession.objects.get(pk=session.pk)
    assert stored.plan.startswith("ART to the calf")
    assert stored.content_hash == signed.content_hash


def test_an_addendum_is_added_from_the_admin(as_user, therapist, session):
    signed = note_sign(session=session, actor=therapist)
    data = form_data(signed, **{"addenda-TOTAL_FORMS": "1", "addenda-0-text": "Called the patient: much better."})
    response = as_user(therapist).post(f"{BASE}{session.pk}/change/", data)
    assert response.status_code == 302
    [addendum] = signed.addenda.all()
    assert (addendum.author, addendum.text) == (therapist, "Called the patient: much better.")
    assert events(AuditAction.ADDENDUM, object_id=str(session.pk))


# --- the chart ------------------------------------------------------------------------------


def test_pain_chart_draws_both_series_and_escapes_labels():
    svg = pain_chart_svg([PainPoint("Jan 01", 8, 4), PainPoint("<b>", 6, None), PainPoint("Jan 15", 5, 2)])
    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 5
    assert "&lt;b&gt;" in svg
    assert "<b>" not in svg
    assert "No pain scores yet" in pain_chart_svg([])


def test_another_clinics_catalog_row_is_not_a_valid_choice(as_user, therapist, session, other_clinic):
    from treatments.models import BodyRegion

    theirs = BodyRegion.objects.create(clinic=other_clinic, code="their_region", name="Theirs")
    response = as_user(therapist).post(f"{BASE}{session.pk}/change/", form_data(session) | massage_row(theirs.pk))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not MassageEntry.objects.exists()


def test_urgent_flags_come_first_and_a_malformed_id_is_not_an_error(as_user, therapist, session):
    for rule_code, severity in (("pregnancy", "caution"), ("cauda_equina", "urgent"), ("pregnancy", "info")):
        PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code=rule_code, severity=severity)
    client = as_user(therapist)
    flags = client.get(f"{BASE}{session.pk}/change/").context["patient_flags"]
    assert [f.severity for f in flags] == ["urgent", "caution", "info"]
    assert client.get(f"{BASE}not-a-number/change/").status_code == 302
