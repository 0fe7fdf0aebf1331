"""A care relationship a therapist cannot manufacture alone (see `clinic.security.access`).

Theo treats Maya: his note is the record under attack. Cara is a colleague of the same
clinic who has never seen Maya. Booking Maya with herself (and cancelling, or marking the
visit done), moving someone else's booking onto herself, or starting a note for Maya must
not open Maya's record to Cara: only facts someone else created do (a booking by the front
desk, a visit that happened, a note she signed, a note an owner gave her) or break-glass.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from clinic.models import AuditAction, AuditEvent, BreakGlassAccess
from clinic.security.access import BreakGlassRequired, break_glass_open, clinical_access_check, scope_clinical_rows
from clinic.security.roles import Role
from intake.services import intake_submit
from patients.models import Patient
from sessions.models import TreatmentSession
from sessions.services import session_start, waitlist_entry_create, waitlist_offer_accept, waitlist_offer_create
from tests.factories import (
    AppointmentFactory,
    LocationFactory,
    PatientFactory,
    PractitionerFactory,
    ServiceFactory,
    TreatmentSessionFactory,
    clean_intake_answers,
    intake_link,
    staff,
)
from tests.sessions.conftest import NOW, local, weekday_hours

pytestmark = pytest.mark.django_db
REASON = "Covering for Theo today; patient arrived with acute calf pain."
SUBJECTIVE = "Sharp calf pain"
TOMORROW_10 = local(2027, 3, 2, 10, 0)


@pytest.fixture
def world(time_machine, clinic, practitioner, owner, receptionist):
    """Monday 1 March 2027: Theo's draft note for Maya (and her intake); Cara and Una work
    every day 09:00-17:00 and offer an acupuncture session (no room needed)."""
    time_machine.move_to(NOW, tick=True)
    location = LocationFactory(clinic=clinic)
    service = ServiceFactory(clinic=clinic, name="Acupuncture", duration_minutes=45, requires_room=False)
    cara = staff(clinic, Role.THERAPIST, "cara-colleague")
    cara_profile = PractitionerFactory(clinic=clinic, user=cara, display_name="Cara Colleague")
    una = PractitionerFactory(clinic=clinic, display_name="Una Other")
    for profile in (cara_profile, una, practitioner):
        profile.services.add(service)
        weekday_hours(clinic, profile, location)
    maya = PatientFactory(clinic=clinic, given_name="Maya", family_name="Singh")
    note = TreatmentSessionFactory(
        clinic=clinic, patient=maya, practitioner=practitioner, started_at=NOW - dt.timedelta(days=7)
    )
    submission = intake_submit(link=intake_link(maya), answers=clean_intake_answers(goals="Run a 10k again."))
    return type(
        "World",
        (),
        {
            "clinic": clinic, "service": service, "cara": cara, "cara_profile": cara_profile, "una": una,
            "theo": practitioner, "maya": maya, "note": note, "submission": submission, "owner": owner,
            "receptionist": receptionist,
        },
    )  # fmt: skip


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def book(client, world, practitioner, start=TOMORROW_10) -> dict:
    response = client.post(
        "/api/v1/appointments/",
        {"patient": world.maya.pk, "practitioner": practitioner.pk, "service": world.service.pk, "start": start},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def clinical_urls(world) -> list[str]:
    return [
        f"/api/v1/notes/{world.note.pk}/",
        f"/api/v1/notes/{world.note.pk}/export/",
        f"/api/v1/pain-series/{world.maya.pk}/",
        f"/api/v1/patients/{world.maya.pk}/export/?format=html",
        f"/api/v1/intake-submissions/{world.submission.pk}/",
        f"/fhir/R4/Encounter/{world.note.pk}",
    ]


def assert_locked_out(client, world) -> None:
    """Every clinical path answers 403 without content; no read is audited as a view."""
    for url in clinical_urls(world):
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)
        assert SUBJECTIVE not in response.content.decode(), url
        assert "Run a 10k again" not in response.content.decode(), url
    assert listed_notes(client) == set()
    assert listed(client, "/api/v1/intake-submissions/") == set()
    assert listed_encounters(client) == set()
    assert not AuditEvent.objects.filter(
        actor=world.cara, action__in=[AuditAction.VIEW, AuditAction.EXPORT], patient_id=world.maya.pk
    ).exists()


def assert_reads(client, world) -> None:
    for url in clinical_urls(world):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    assert SUBJECTIVE in client.get(f"/api/v1/notes/{world.note.pk}/").json()["subjective"]
    assert world.note.pk in listed_notes(client)
    assert world.submission.pk in listed(client, "/api/v1/intake-submissions/")
    assert str(world.note.pk) in listed_encounters(client)


def listed(client, url) -> set:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def listed_notes(client) -> set:
    return listed(client, "/api/v1/notes/")


def listed_encounters(client) -> set:
    response = client.get("/fhir/R4/Encounter")
    assert response.status_code == 200
    return {entry["resource"]["id"] for entry in response.json().get("entry", [])}


# --- the first bypass: booking with oneself ---------------------------------------------------


def test_waitlisting_a_patient_with_oneself_and_the_patient_accepting_grants_no_access(world):
    """The offer link reaches the patient (and staff can read it in the message log); accepting
    it books on behalf of whoever put the patient on the waitlist, here Cara herself."""
    entry = waitlist_entry_create(
        clinic=world.clinic, patient=world.maya, service=world.service, practitioner=world.cara_profile,
        window_start=TOMORROW_10 - dt.timedelta(hours=1), window_end=TOMORROW_10 + dt.timedelta(hours=3),
        created_by=world.cara,
    )  # fmt: skip
    offer = waitlist_offer_create(entry=entry, practitioner=world.cara_profile, room=None, start=TOMORROW_10)
    accepted = waitlist_offer_accept(offer=offer)  # the patient, by link: no user
    assert accepted.appointment is not None
    assert accepted.appointment.booked_by == world.cara
    assert_locked_out(client_for(world.cara), world)


def test_a_patient_accepting_an_offer_the_front_desk_waitlisted_grants_access(world):
    entry = waitlist_entry_create(
        clinic=world.clinic, patient=world.maya, service=world.service, practitioner=world.cara_profile,
        window_start=TOMORROW_10 - dt.timedelta(hours=1), window_end=TOMORROW_10 + dt.timedelta(hours=3),
        created_by=world.receptionist,
    )  # fmt: skip
    offer = waitlist_offer_create(entry=entry, practitioner=world.cara_profile, room=None, start=TOMORROW_10)
    assert waitlist_offer_accept(offer=offer).appointment.booked_by == world.receptionist
    assert_reads(client_for(world.cara), world)


def test_booking_and_cancelling_a_visit_with_oneself_grants_no_access(world):
    cara = client_for(world.cara)
    assert cara.get(f"/api/v1/notes/{world.note.pk}/").status_code == 403
    appointment = book(cara, world, world.cara_profile)
    assert cara.post(f"/api/v1/appointments/{appointment['id']}/cancel/", {}, format="json").status_code == 200
    assert_locked_out(cara, world)


def test_an_upcoming_visit_booked_with_oneself_grants_no_access(world):
    cara = client_for(world.cara)
    book(cara, world, world.cara_profile)
    assert_locked_out(cara, world)


def test_a_visit_booked_with_oneself_and_marked_done_by_oneself_grants_no_access(world):
    cara = client_for(world.cara)
    appointment = book(cara, world, world.cara_profile)
    assert cara.post(f"/api/v1/appointments/{appointment['id']}/check-in/").status_code == 200
    assert cara.post(f"/api/v1/appointments/{appointment['id']}/complete/").status_code == 200
    assert_locked_out(cara, world)


def test_moving_someone_elses_booking_onto_oneself_grants_no_access(world):
    appointment = book(client_for(world.receptionist), world, world.una)
    cara = client_for(world.cara)
    moved = cara.post(
        f"/api/v1/appointments/{appointment['id']}/reschedule/",
        {"start": TOMORROW_10.isoformat(), "practitioner": world.cara_profile.pk},
        format="json",
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["practitioner"] == world.cara_profile.pk
    assert_locked_out(cara, world)


# --- the second bypass: starting a note ---------------------------------------------------------


def test_starting_a_note_for_a_patient_one_does_not_treat_is_refused_and_audited(world):
    cara = client_for(world.cara)
    response = cara.post(
        "/api/v1/notes/",
        {"patient": world.maya.pk, "practitioner": world.cara_profile.pk, "subjective": "Reading around."},
        format="json",
    )
    assert response.status_code == 403
    assert "POST /api/v1/break-glass/" in response.json()["detail"]
    assert not TreatmentSession.objects.filter(practitioner=world.cara_profile).exists()
    [denied] = AuditEvent.objects.filter(action=AuditAction.DENIED, actor=world.cara)
    assert (denied.patient_id, denied.extra["why"]) == (world.maya.pk, "break_glass_required")
    # And the refused note opened nothing: Theo's draft stays out of reach, to read or to change.
    assert_locked_out(cara, world)
    assert cara.patch(f"/api/v1/notes/{world.note.pk}/", {"plan": "Rewritten."}, format="json").status_code == 403
    world.note.refresh_from_db()
    assert world.note.plan != "Rewritten."


def test_a_therapist_cannot_write_a_note_in_a_colleagues_name(world):
    book(client_for(world.receptionist), world, world.cara_profile)  # Cara may open Maya's record
    cara = client_for(world.cara)
    response = cara.post(
        "/api/v1/notes/", {"patient": world.maya.pk, "practitioner": world.theo.pk, "subjective": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "practitioner" in response.json()["errors"]
    assert TreatmentSession.objects.filter(patient=world.maya).count() == 1
    own = cara.post("/api/v1/notes/", {"patient": world.maya.pk, "practitioner": world.cara_profile.pk}, format="json")
    assert own.status_code == 201, own.content
    assert own.json()["practitioner"] == world.cara_profile.pk


def test_an_owner_assigns_a_note_to_a_practitioner_who_then_writes_it(world):
    owner = client_for(world.owner)
    response = owner.post(
        "/api/v1/notes/", {"patient": world.maya.pk, "practitioner": world.cara_profile.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["practitioner"] == world.cara_profile.pk
    cara = client_for(world.cara)
    assigned = response.json()["id"]
    assert (
        cara.patch(f"/api/v1/notes/{assigned}/", {"plan": "Needling, review in a week."}, format="json").status_code
        == 200
    )
    assert_reads(cara, world)


def test_the_note_service_refuses_a_therapist_the_same_way_whoever_calls_it(world):
    with pytest.raises(BreakGlassRequired):
        session_start(clinic=world.clinic, patient=world.maya, practitioner=world.cara_profile, actor=world.cara)
    AppointmentFactory(clinic=world.clinic, patient=world.maya, practitioner=world.cara_profile)  # no booker: an import
    with pytest.raises(ValidationError) as raised:
        session_start(clinic=world.clinic, patient=world.maya, practitioner=world.theo, actor=world.cara)
    assert "practitioner" in raised.value.message_dict
    assert TreatmentSession.objects.filter(patient=world.maya).count() == 1


def test_the_admin_add_form_refuses_a_note_in_a_colleagues_name_or_for_a_stranger(client, world):
    client.force_login(world.cara)
    form = {
        "clinic": world.clinic.pk, "patient": world.maya.pk, "practitioner": world.theo.pk,
        "started_at_0": "2027-03-01", "started_at_1": "08:30:00", "subjective": "x",
    }  # fmt: skip
    for prefix in ("art_entries", "massage_entries", "acupuncture_entries", "home_care", "addenda"):
        form |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    response = client.post("/admin/treatment_sessions/treatmentsession/add/", form)
    assert response.status_code == 200  # the form again, with its errors
    assert TreatmentSession.objects.filter(patient=world.maya).count() == 1
    response = client.post(
        "/admin/treatment_sessions/treatmentsession/add/", {**form, "practitioner": world.cara_profile.pk}
    )
    assert response.status_code == 200
    assert "usual practitioner" in response.content.decode()
    assert TreatmentSession.objects.filter(patient=world.maya).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, actor=world.cara, patient_id=world.maya.pk).exists()


# --- what does grant access -------------------------------------------------------------------


def test_an_upcoming_visit_booked_by_the_front_desk_grants_access(world):
    book(client_for(world.receptionist), world, world.cara_profile)
    assert_reads(client_for(world.cara), world)


def test_a_visit_that_happened_grants_access(world):
    AppointmentFactory(
        clinic=world.clinic, patient=world.maya, practitioner=world.cara_profile, booked_by=world.receptionist,
        start=NOW - dt.timedelta(days=30), status="completed",
    )  # fmt: skip
    assert_reads(client_for(world.cara), world)


@pytest.mark.parametrize("status", ["cancelled", "no_show", "booked"])
def test_a_past_visit_that_did_not_happen_grants_nothing(world, status):
    AppointmentFactory(
        clinic=world.clinic, patient=world.maya, practitioner=world.cara_profile, booked_by=world.receptionist,
        start=NOW - dt.timedelta(days=30), status=status,
    )  # fmt: skip
    assert_locked_out(client_for(world.cara), world)


def test_a_visit_older_than_the_window_grants_nothing(world):
    AppointmentFactory(
        clinic=world.clinic, patient=world.maya, practitioner=world.cara_profile, booked_by=world.receptionist,
        start=NOW - dt.timedelta(days=600), status="completed",
    )  # fmt: skip
    assert_locked_out(client_for(world.cara), world)


def test_a_note_signed_under_break_glass_keeps_access_after_the_glass_closes(world, time_machine):
    break_glass_open(user=world.cara, patient=world.maya, reason=REASON)
    cara = client_for(world.cara)
    soap = {"subjective": "Acute calf pain.", "objective": "Tender calf.", "assessment": "Strain.", "plan": "Rest."}
    created = cara.post(
        "/api/v1/notes/", {"patient": world.maya.pk, "practitioner": world.cara_profile.pk, **soap}, format="json"
    )
    assert created.status_code == 201, created.content
    assert cara.post(f"/api/v1/notes/{created.json()['id']}/sign/").status_code == 200
    time_machine.move_to(NOW + dt.timedelta(hours=5), tick=True)  # the emergency access has lapsed
    assert_reads(cara, world)


def test_a_draft_written_under_break_glass_grants_nothing_once_the_glass_closes(world, time_machine):
    break_glass_open(user=world.cara, patient=world.maya, reason=REASON)
    cara = client_for(world.cara)
    draft = cara.post(
        "/api/v1/notes/", {"patient": world.maya.pk, "practitioner": world.cara_profile.pk}, format="json"
    )
    assert draft.status_code == 201, draft.content
    time_machine.move_to(NOW + dt.timedelta(hours=5), tick=True)
    assert cara.get(f"/api/v1/notes/{draft.json()['id']}/").status_code == 403
    assert_locked_out(cara, world)


def test_break_glass_grants_access_and_is_recorded_for_the_owners_review(world):
    cara = client_for(world.cara)
    assert cara.post("/api/v1/break-glass/", {"patient": world.maya.pk, "reason": REASON}).status_code == 201
    assert_reads(cara, world)
    assert clinical_access_check(user=world.cara, patient=world.maya) == "break_glass"
    assert AuditEvent.objects.filter(
        action=AuditAction.BREAK_GLASS, actor=world.cara, patient_id=world.maya.pk
    ).exists()
    owner_view = client_for(world.owner).get("/api/v1/break-glass/").json()["results"]
    assert [(row["user"], row["patient"], row["reviewed_at"]) for row in owner_view] == [
        (world.cara.pk, world.maya.pk, None)
    ]
    assert BreakGlassAccess.objects.filter(user=world.cara, patient=world.maya).count() == 1


# --- one rule: the per-patient check and the list filter agree ---------------------------------


def _grants(world) -> dict[str, callable]:
    def appointment(**fields):
        def make():
            values = {"clinic": world.clinic, "patient": world.maya, "practitioner": world.cara_profile} | fields
            AppointmentFactory(**values)

        return make

    past = NOW - dt.timedelta(days=30)
    return {
        "nothing": lambda: None,
        "self_booked_upcoming": appointment(booked_by=world.cara),
        "self_booked_completed": appointment(booked_by=world.cara, start=past, status="completed"),
        "cancelled": appointment(booked_by=world.receptionist, status="cancelled"),
        "front_desk_upcoming": appointment(booked_by=world.receptionist),
        "import_upcoming": appointment(booked_by=None),
        "front_desk_arrived": appointment(booked_by=world.receptionist, start=past, status="arrived"),
        "own_draft": lambda: TreatmentSessionFactory(
            clinic=world.clinic, patient=world.maya, practitioner=world.cara_profile, created_by=world.cara
        ),
        "draft_assigned_by_owner": lambda: TreatmentSessionFactory(
            clinic=world.clinic, patient=world.maya, practitioner=world.cara_profile, created_by=world.owner
        ),
    }


EXPECTED = {
    "nothing": False,
    "self_booked_upcoming": False,
    "self_booked_completed": False,
    "cancelled": False,
    "front_desk_upcoming": True,
    "import_upcoming": True,
    "front_desk_arrived": True,
    "own_draft": False,
    "draft_assigned_by_owner": True,
}


@pytest.mark.parametrize("fact", sorted(EXPECTED))
def test_the_per_patient_check_and_the_list_filter_apply_the_same_rule(world, fact):
    _grants(world)[fact]()
    try:
        granted = clinical_access_check(user=world.cara, patient=world.maya) == "usual"
    except BreakGlassRequired:
        granted = False
    listed_patients = scope_clinical_rows(
        Patient.objects.filter(pk=world.maya.pk), user=world.cara, clinic=world.clinic, role=Role.THERAPIST, field=""
    )
    assert granted is EXPECTED[fact]
    assert listed_patients.exists() is EXPECTED[fact]
