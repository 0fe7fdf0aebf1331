"""The notes API per persona: clinical roles read and write, receptionists see only that a
session happened (404 and an audit record for the content), another clinic sees nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from clinic.models import AuditAction, AuditEvent
from sessions import services
from sessions.models import AcupunctureEntry, MassageEntry, NoteStatus, TreatmentSession
from sessions.services import entry_add, note_sign
from tests.factories import AppointmentFactory, PatientFlagFactory, TreatmentSessionFactory
from tests.sessions.conftest import art, home_care, massage, needle

pytestmark = pytest.mark.django_db


def audited(action, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))


def note_url(session, suffix="") -> str:
    return f"/api/v1/notes/{session.pk}/{suffix}"


# --- who sees what ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["owner_api", "therapist_api"])
def test_clinical_roles_read_the_note_and_each_read_is_audited(request, session, persona):
    client = request.getfixturevalue(persona)
    response = client.get(note_url(session), HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 200
    assert response.json()["subjective"].startswith("Sharp calf pain")
    [event] = audited(AuditAction.VIEW, object_id=str(session.pk))
    assert (event.via, event.request_id, event.patient_id) == ("api", "req-123", session.patient_id)


def test_listing_notes_is_audited_with_the_ids_shown(therapist_api, session):
    response = therapist_api.get("/api/v1/notes/")
    assert [row["id"] for row in response.json()["results"]] == [session.pk]
    [event] = audited(AuditAction.LIST)
    assert event.extra["ids"] == [session.pk]


@pytest.mark.parametrize("url", ["/api/v1/notes/", "/api/v1/treatment-sessions/"])
def test_a_therapists_day_is_filtered_by_start_time(therapist_api, session, clinic, practitioner, url):
    earlier = TreatmentSessionFactory(
        clinic=clinic, patient=session.patient, practitioner=practitioner,
        started_at=session.started_at - dt.timedelta(days=1),
    )  # fmt: skip
    day = session.started_at.replace(hour=0, minute=0, second=0)
    params = {
        "practitioner": practitioner.pk,
        "started_from": day.isoformat(),
        "started_to": (day + dt.timedelta(days=1)).isoformat(),
    }
    response = therapist_api.get(url, params)
    assert response.status_code == 200, response.json()
    assert [row["id"] for row in response.json()["results"]] == [session.pk]
    previous = therapist_api.get(url, {**params, "started_from": (day - dt.timedelta(days=1)).isoformat()})
    assert {row["id"] for row in previous.json()["results"]} == {session.pk, earlier.pk}
    bad = therapist_api.get(url, {"started_from": "yesterday"})
    assert bad.status_code == 400
    assert "started_from" in bad.json()["errors"]


def test_a_receptionist_gets_404_for_a_note_and_the_attempt_is_audited(receptionist_api, receptionist, session):
    for url in (note_url(session), "/api/v1/notes/", f"/api/v1/pain-series/{session.patient_id}/"):
        response = receptionist_api.get(url)
        assert response.status_code == 404
        assert "subjective" not in response.content.decode()
    response = receptionist_api.patch(note_url(session), {"plan": "changed"})
    assert response.status_code == 404
    denied = audited(AuditAction.DENIED)
    assert len(denied) == 4
    assert {e.actor_id for e in denied} == {receptionist.pk}
    assert not audited(AuditAction.VIEW)
    assert TreatmentSession.objects.get(pk=session.pk).plan.startswith("ART to the calf")


def test_a_receptionist_sees_that_a_session_happened_without_its_content(receptionist_api, session):
    response = receptionist_api.get("/api/v1/treatment-sessions/")
    [row] = response.json()["results"]
    assert row == {
        "id": session.pk,
        "patient": session.patient_id,
        "practitioner": session.practitioner_id,
        "appointment": None,
        "started_at": row["started_at"],
        "status": "draft",
        "signed_at": None,
    }


def test_another_clinics_therapist_finds_nothing(other_api, session):
    assert other_api.get(note_url(session)).status_code == 404
    assert other_api.get("/api/v1/notes/").json()["results"] == []
    assert other_api.get("/api/v1/treatment-sessions/").json()["results"] == []
    assert other_api.get(f"/api/v1/pain-series/{session.patient_id}/").status_code == 404
    assert other_api.post(note_url(session, "sign/")).status_code == 404
    assert not audited(AuditAction.VIEW)


def test_an_api_key_needs_the_clinical_scope(api, clinic, session):
    from clinic.services import api_key_create

    _, clinical = api_key_create(clinic=clinic, name="ehr", scopes=["clinical:read"])
    _, booking = api_key_create(clinic=clinic, name="widget", scopes=["appointments:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {clinical}")
    assert api.get(note_url(session)).status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {booking}")
    assert api.get(note_url(session)).status_code == 404
    assert api.get("/api/v1/treatment-sessions/").status_code == 200
    assert [e.actor_label[:11] for e in audited(AuditAction.DENIED)] == ["api-key:ck_"]


# --- writing ------------------------------------------------------------------------------


def test_a_therapist_opens_a_note_adds_entries_and_signs_it(
    therapist_api, catalogs, patient, practitioner, receptionist
):
    # The front desk booked the patient with Theo: he may open her record (see clinic.security.access).
    AppointmentFactory(clinic=practitioner.clinic, patient=patient, practitioner=practitioner, booked_by=receptionist)
    created = therapist_api.post(
        "/api/v1/notes/",
        {
            "patient": patient.pk, "practitioner": practitioner.pk, "subjective": "Left calf pain 6/10.",
            "objective": "Tender medial gastrocnemius.", "assessment": "Overuse adhesions.",
            "plan": "ART and needling; re-book in 7 days.", "pain_before": 6, "rebook_within_days": 7,
        },
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    url = note_url(TreatmentSession.objects.get(pk=created.json()["id"]))
    art_entry = therapist_api.post(
        url + "entries/",
        {"kind": "art", "structure": "gastrocnemius", "protocol": "gastrocnemius", "side": "left", "passes": 4},
    )
    assert art_entry.status_code == 201, art_entry.json()
    assert art_entry.json()["patient_movement"] == "Patient actively dorsiflexes the ankle."
    rub = therapist_api.post(
        url + "entries/",
        {"kind": "massage", "region": "calf", "side": "left", "technique": "stripping", "pressure": 3,
         "minutes": 10, "trigger_points": ["gastrocnemius_medial"]},
    )  # fmt: skip
    assert rub.status_code == 201, rub.json()
    acu = therapist_api.post(
        url + "entries/",
        {"kind": "acupuncture", "point": "st36", "side": "both", "needles_inserted": 2, "needles_removed": 2,
         "depth_mm": 25, "retention_minutes": 20},
    )  # fmt: skip
    assert acu.status_code == 201, acu.json()
    assert therapist_api.patch(url, {"pain_after": 2}).status_code == 200
    signed = therapist_api.post(url + "sign/")
    assert signed.status_code == 200, signed.json()
    body = signed.json()
    assert body["status"] == "signed"
    assert body["signed_by"] == "theo-therapist"
    assert len(body["content_hash"]) == 64
    assert [e["structure"] for e in body["art_entries"]] == ["gastrocnemius"]
    assert body["massage_entries"][0]["trigger_points"] == ["gastrocnemius_medial"]
    assert body["acupuncture_entries"][0]["point"] == "ST36"


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"kind": "acupuncture", "point": "ST99"}, "point", "ST meridian has points 1 to 45"),
        ({"kind": "acupuncture", "point": "ZZ1"}, "point", "not a WHO point code"),
        ({"kind": "acupuncture", "point": "BL65"}, "point", "Unknown"),
        ({"kind": "acupuncture", "needles_inserted": -1}, "needles_inserted", ""),
        ({"kind": "acupuncture", "point": "GV4", "side": "left"}, "side", "midline point"),
        ({"kind": "massage", "pressure": 7}, "pressure", ""),
        ({"kind": "art", "structure": "not-a-muscle"}, "structure", "Unknown"),
        ({"kind": "surgery"}, "kind", ""),
    ],
)
def test_bad_entries_are_field_errors_and_nothing_is_written(therapist_api, session, payload, field, message):
    defaults = {
        "acupuncture": {"point": "ST36", "side": "left", "needles_inserted": 1, "needles_removed": 1, "depth_mm": 20,
                        "retention_minutes": 15},
        "massage": {"region": "calf", "side": "left", "technique": "stripping", "pressure": 3, "minutes": 10},
        "art": {"structure": "soleus", "side": "left", "passes": 3},
    }.get(payload["kind"], {})  # fmt: skip
    response = therapist_api.post(note_url(session, "entries/"), defaults | payload)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors
    assert message in " ".join(errors[field])
    assert not AcupunctureEntry.objects.exists()
    assert not MassageEntry.objects.exists()


def test_pain_out_of_range_is_a_field_error(therapist_api, session):
    response = therapist_api.patch(note_url(session), {"pain_before": 11})
    assert response.status_code == 400
    assert "pain_before" in response.json()["errors"]
    assert TreatmentSession.objects.get(pk=session.pk).pain_before == 6


def test_a_contraindicated_entry_is_refused_until_overridden_with_a_reason(therapist_api, session):
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="pregnancy", severity="caution")
    payload = {"kind": "acupuncture", "point": "SP6", "side": "left", "needles_inserted": 1, "needles_removed": 1,
               "depth_mm": 15, "retention_minutes": 15}  # fmt: skip
    warned = therapist_api.post(note_url(session, "entries/"), payload)
    assert warned.status_code == 400
    assert "Pregnancy" in warned.json()["errors"]["override_reason"][0]
    reason = "Post-partum: the flag is out of date; confirmed with the patient."
    accepted = therapist_api.post(note_url(session, "entries/"), payload | {"override_reason": reason})
    assert accepted.status_code == 201
    assert accepted.json()["overridden_rules"] == ["pregnancy"]


def test_a_blocked_entry_answers_400_with_the_reason(therapist_api, session):
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="implanted_device")
    response = therapist_api.post(
        note_url(session, "entries/"),
        {"kind": "acupuncture", "point": "ST36", "side": "left", "needles_inserted": 1, "needles_removed": 1,
         "depth_mm": 15, "retention_minutes": 15, "electro_stimulation": True, "override_reason": "Please"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "electro-stimulation" in response.json()["detail"] + str(response.json()["errors"])
    assert not AcupunctureEntry.objects.exists()


def test_signing_with_unmatched_needles_is_refused(therapist_api, therapist, session):
    entry_add(entry=needle(session, inserted=2, removed=1, side="both"), actor=therapist)
    response = therapist_api.post(note_url(session, "sign/"))
    assert response.status_code == 400
    assert "needle_incident" in response.json()["errors"]
    assert TreatmentSession.objects.get(pk=session.pk).status == NoteStatus.DRAFT


def test_a_signed_note_answers_409_to_any_change(therapist_api, therapist, session):
    entry = entry_add(entry=art(session), actor=therapist)
    note_sign(session=session, actor=therapist)
    assert therapist_api.patch(note_url(session), {"plan": "changed"}).status_code == 409
    assert therapist_api.post(note_url(session, "sign/")).status_code == 409
    response = therapist_api.post(note_url(session, "entries/"), {"kind": "art", "structure": "soleus", "passes": 2})
    assert response.status_code == 409
    assert response.json()["title"] == "Conflict"
    assert therapist_api.delete(note_url(session, f"entries/art/{entry.pk}/")).status_code == 409
    assert therapist_api.put(note_url(session), {"plan": "changed"}).status_code == 405
    stored = TreatmentSession.objects.get(pk=session.pk)
    assert stored.plan.startswith("ART to the calf")
    assert stored.art_entries.count() == 1


def test_a_draft_entry_can_be_deleted(therapist_api, therapist, session):
    entry = entry_add(entry=art(session), actor=therapist)
    assert therapist_api.delete(note_url(session, f"entries/art/{entry.pk}/")).status_code == 204
    assert therapist_api.delete(note_url(session, f"entries/art/{entry.pk}/")).status_code == 404
    assert not session.art_entries.exists()


def test_addenda_are_added_to_a_signed_note(therapist_api, therapist, session):
    note_sign(session=session, actor=therapist)
    response = therapist_api.post(note_url(session, "addenda/"), {"text": "Patient reported less pain next day."})
    assert response.status_code == 201
    assert response.json()["author"] == "theo-therapist"
    assert therapist_api.post(note_url(session, "addenda/"), {"text": ""}).status_code == 400
    note = therapist_api.get(note_url(session)).json()
    assert [a["text"] for a in note["addenda"]] == ["Patient reported less pain next day."]


def test_creating_a_note_for_another_clinics_patient_is_a_field_error(therapist_api, practitioner, other_clinic):
    from tests.factories import PatientFactory

    stranger = PatientFactory(clinic=other_clinic)
    response = therapist_api.post(
        "/api/v1/notes/", {"patient": stranger.pk, "practitioner": practitioner.pk, "subjective": "x"}
    )
    assert response.status_code == 400
    assert "patient" in response.json()["errors"]
    assert not TreatmentSession.objects.exists()


# --- pain series and export -----------------------------------------------------------------


def test_pain_series_lists_sessions_oldest_first_and_is_audited(therapist_api, session, clinic, practitioner):
    import datetime as dt

    earlier = TreatmentSessionFactory(
        clinic=clinic, practitioner=practitioner, patient=session.patient, pain_before=8, pain_after=5,
        started_at=session.started_at - dt.timedelta(days=7),
    )  # fmt: skip
    response = therapist_api.get(f"/api/v1/pain-series/{session.patient_id}/")
    points = response.json()["points"]
    assert [(p["session"], p["pain_before"], p["pain_after"]) for p in points] == [
        (earlier.pk, 8, 5),
        (session.pk, 6, 3),
    ]
    [event] = audited(AuditAction.VIEW, object_type="patients.patient")
    assert event.extra == {"resource": "pain_series"}


def test_export_returns_the_signed_record_and_is_audited(therapist_api, therapist, session):
    note_sign(session=session, actor=therapist)
    body = therapist_api.get(note_url(session, "export/")).json()
    assert body["hash_verified"] is True
    assert body["note"]["plan"].startswith("ART to the calf")
    assert len(audited(AuditAction.EXPORT, object_id=str(session.pk))) == 1


def test_listing_notes_costs_the_same_queries_for_one_or_many(therapist_api, therapist, session, clinic, practitioner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert therapist_api.get("/api/v1/notes/").status_code == 200
        return len(captured)

    entry_add(entry=art(session), actor=therapist)
    entry_add(entry=needle(session), actor=therapist)
    one = count()
    for _ in range(4):
        other = TreatmentSessionFactory(clinic=clinic, practitioner=practitioner, patient=session.patient)
        entry_add(entry=art(other), actor=therapist)
        entry_add(entry=needle(other), actor=therapist)
    # memberships (once per request), page of sessions (+ signed_by), art entries (+ structure
    # and protocol), massage entries (+ region), their trigger points, acupuncture entries
    # (+ point), home care, addenda (+ author), and the audit record (chain lock with the
    # previous hash in one round trip, insert)
    assert count() == one == 11


def test_reading_a_note_costs_a_fixed_number_of_queries(therapist_api, therapist, session):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    entry_add(entry=art(session), actor=therapist)
    entry_add(entry=needle(session), actor=therapist)
    with CaptureQueriesContext(connection) as captured:
        assert therapist_api.get(note_url(session)).status_code == 200
    # memberships; the note (+ patient, signed_by); art, massage, acupuncture, home care and addenda
    # prefetches (trigger points only when there are massage entries); the care-relationship check
    # (one query: its three EXISTS probes in one statement); the audit record (savepoint, chain lock
    # with the previous hash in one round trip, insert, release)
    assert len(captured) == 12, [query["sql"][:60] for query in captured.captured_queries]


def test_notes_with_content_leave_nothing_to_read_while_serialising(therapist, session):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sessions.selectors import notes_with_content
    from sessions.serializers import NoteSerializer
    from treatments.models import TriggerPoint

    entry_add(entry=art(session), actor=therapist)
    entry_add(entry=needle(session), actor=therapist)
    entry_add(
        entry=massage(session), actor=therapist, trigger_points=list(TriggerPoint.objects.filter(clinic=None)[:2])
    )
    entry_add(entry=home_care(session), actor=therapist)
    note_sign(session=session, actor=therapist)
    services.note_addendum_add(session=session, text="Called the next day: less pain.", actor=therapist)
    loaded = list(notes_with_content().filter(pk=session.pk))
    with CaptureQueriesContext(connection) as captured:
        body = NoteSerializer(loaded, many=True).data[0]
        entries = loaded[0].entries()
    assert not captured.captured_queries, [query["sql"][:80] for query in captured.captured_queries]
    relations = ("art_entries", "massage_entries", "acupuncture_entries", "home_care", "addenda")
    assert [len(body[name]) for name in relations] == [1, 1, 1, 1, 1]
    assert len(body["massage_entries"][0]["trigger_points"]) == 2
    assert len(entries) == 4
    # Read without the selector, the same note serialises the same (each relation read on demand).
    assert NoteSerializer(TreatmentSession.objects.get(pk=session.pk)).data == body


@pytest.mark.parametrize("suffix", ["sign/", "addenda/"])
def test_api_keys_cannot_sign_or_add_addenda_which_record_a_clinician(api, clinic, session, suffix):
    from clinic.services import api_key_create

    _, raw = api_key_create(clinic=clinic, name="ehr", scopes=["clinical:read", "clinical:write"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api.post(
        note_url(session, suffix), {"text": "Late entry."} if suffix == "addenda/" else {}, format="json"
    )
    assert response.status_code == 403
    assert "API key" in response.json()["detail"]
    session.refresh_from_db()
    assert session.status == NoteStatus.DRAFT
    assert not session.addenda.exists()
