"""Note entry in the admin: the whole note's safety review (every block and warning at once,
one reason per warning, answered in one save), ART protocols narrowed to the structure, and
one message when a signed note refuses an edit."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from clinic.models import AuditAction, AuditEvent
from sessions.admin.note_entries import override_text, stored_reason
from sessions.models import AcupunctureEntry, ArtEntry, MassageEntry, NoteStatus, TreatmentSession
from sessions.services import entry_add, entry_save, note_sign
from tests.factories import PatientFlagFactory
from tests.sessions.conftest import art
from tests.sessions.test_admin import BASE, form_data
from treatments.models import AcupuncturePoint, ArtProtocol, BodyRegion, Muscle

pytestmark = pytest.mark.django_db

BLEEDING = "anticoagulant_or_bleeding"
VARICOSE = "varicose_veins"


@pytest.fixture
def client_of(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def three_entries() -> dict:
    """An ART, a massage and an acupuncture entry, each deep work or needling on the left calf."""
    rows = {
        "art_entries": {
            "structure": Muscle.objects.get(code="gastrocnemius", clinic=None).pk,
            "protocol": ArtProtocol.objects.get(code="gastrocnemius", clinic=None).pk,
            "side": "left",
            "passes": "2",
        },
        "massage_entries": {"region": BodyRegion.objects.get(code="calf").pk, "side": "left",
                            "technique": "stripping", "pressure": "5", "minutes": "10"},
        "acupuncture_entries": {"point": AcupuncturePoint.objects.get(code="BL57").pk, "side": "left",
                                "needles_inserted": "1", "needles_removed": "1", "depth_mm": "20",
                                "retention_minutes": "20"},
    }  # fmt: skip
    data = {}
    for prefix, row in rows.items():
        data |= {f"{prefix}-0-{name}": str(value) for name, value in row.items()} | {f"{prefix}-TOTAL_FORMS": "1"}
    return data


def reason_fields(page: str) -> list[str]:
    return re.findall(r'<textarea name="([^"]+-override-[^"]+)"', page)


def test_three_warnings_are_listed_at_once_and_answered_in_one_save(client_of, therapist, session):
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code=BLEEDING, severity="caution")
    client = client_of(therapist)
    url = f"{BASE}{session.pk}/change/"

    first = client.post(url, form_data(session) | three_entries())
    assert first.status_code == 200
    page = first.content.decode()
    assert "3 warnings need a reason" in page
    assert reason_fields(page) == [
        f"art_entries-0-override-{BLEEDING}",
        f"massage_entries-0-override-{BLEEDING}",
        f"acupuncture_entries-0-override-{BLEEDING}",
    ]
    assert [m.objects.count() for m in (ArtEntry, MassageEntry, AcupunctureEntry)] == [0, 0, 0]

    reasons = {name: f"Reason {i}: INR in range." for i, name in enumerate(reason_fields(page))}
    saved = client.post(url, form_data(session) | three_entries() | reasons)
    assert saved.status_code == 302
    for model, prefix in ((ArtEntry, "art_entries"), (MassageEntry, "massage_entries"),
                          (AcupunctureEntry, "acupuncture_entries")):  # fmt: skip
        entry = model.objects.get(session=session)
        assert entry.override_reason == reasons[f"{prefix}-0-override-{BLEEDING}"]
        assert entry.overridden_rules == [BLEEDING]
    adds = AuditEvent.objects.filter(action=AuditAction.CHANGE, object_id=str(session.pk), extra__op="add")
    assert adds.count() == 3
    # The note signs: no warning is left unanswered.
    assert note_sign(session=session, actor=therapist).status == NoteStatus.SIGNED


def test_one_unanswered_warning_saves_nothing_and_keeps_the_typed_reasons(client_of, therapist, session):
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code=BLEEDING, severity="caution")
    client = client_of(therapist)
    answered = {
        f"art_entries-0-override-{BLEEDING}": "Light passes only.",
        f"massage_entries-0-override-{BLEEDING}": "GP cleared deep work.",
        f"acupuncture_entries-0-override-{BLEEDING}": "   ",
    }
    response = client.post(f"{BASE}{session.pk}/change/", form_data(session) | three_entries() | answered)
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 warning needs a reason" in page
    assert ">Light passes only.</textarea>" in page
    assert ">GP cleared deep work.</textarea>" in page
    assert page.count('aria-invalid="true"') == 1
    assert not ArtEntry.objects.exists()


def test_two_warnings_on_one_entry_get_a_reason_each(client_of, therapist, session):
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code=BLEEDING, severity="caution")
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code=VARICOSE, severity="caution",
                       region="calf", side="left")  # fmt: skip
    client = client_of(therapist)
    massage_only = {k: v for k, v in three_entries().items() if k.startswith("massage_entries")}
    page = client.post(f"{BASE}{session.pk}/change/", form_data(session) | massage_only).content.decode()
    assert sorted(reason_fields(page)) == [
        f"massage_entries-0-override-{BLEEDING}",
        f"massage_entries-0-override-{VARICOSE}",
    ]
    reasons = {
        f"massage_entries-0-override-{BLEEDING}": "INR checked today.",
        f"massage_entries-0-override-{VARICOSE}": "Strokes kept above the veins.",
    }
    assert client.post(f"{BASE}{session.pk}/change/", form_data(session) | massage_only | reasons).status_code == 302
    entry = MassageEntry.objects.get()
    assert entry.overridden_rules == sorted([BLEEDING, VARICOSE])
    assert entry.override_reason == (
        "Anticoagulant or bleeding: INR checked today.\nVaricose veins: Strokes kept above the veins."
    )
    # The page shows each reason back in its own field.
    again = client.get(f"{BASE}{session.pk}/change/").content.decode()
    assert ">INR checked today.</textarea>" in again
    assert ">Strokes kept above the veins.</textarea>" in again
    assert "Every warning has a reason." in again


def test_a_block_is_listed_with_the_warnings_and_has_no_reason_field(client_of, therapist, session):
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code=BLEEDING, severity="caution")
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code="dvt_suspected", severity="urgent",
                       region="leg", side="left")  # fmt: skip
    response = client_of(therapist).post(f"{BASE}{session.pk}/change/", form_data(session) | three_entries())
    page = response.content.decode()
    assert "2 blocked, 3 warnings need a reason" in page
    assert len(reason_fields(page)) == 3  # the blocks (ART and massage on the DVT leg) take no reason
    assert page.count("Blocked:</strong> Suspected deep vein thrombosis") == 2
    assert not MassageEntry.objects.exists()


def test_a_flag_raised_after_an_entry_was_saved_is_answered_from_the_review(client_of, therapist, session):
    entry = entry_add(entry=art(session), actor=therapist)
    PatientFlagFactory(clinic=session.clinic, patient=session.patient, rule_code=BLEEDING, severity="caution")
    client = client_of(therapist)
    page = client.get(f"{BASE}{session.pk}/change/").content.decode()
    assert "1 warning needs a reason" in page
    assert reason_fields(page) == [f"art_entries-0-override-{BLEEDING}"]
    with pytest.raises(ValidationError):
        note_sign(session=session, actor=therapist)

    data = form_data(session) | {
        "art_entries-0-structure": str(entry.structure_id), "art_entries-0-side": "left", "art_entries-0-passes": "3",
        f"art_entries-0-override-{BLEEDING}": "INR 2.1; light contact.",
    }  # fmt: skip
    assert client.post(f"{BASE}{session.pk}/change/", data).status_code == 302
    entry.refresh_from_db()
    assert (entry.override_reason, entry.overridden_rules) == ("INR 2.1; light contact.", [BLEEDING])
    assert note_sign(session=TreatmentSession.objects.get(pk=session.pk), actor=therapist).is_signed


def test_override_text_round_trips_per_warning():
    both = override_text({VARICOSE: "Above the veins.", BLEEDING: "INR fine."})
    entry = MassageEntry(override_reason=both, overridden_rules=[BLEEDING, VARICOSE])
    assert (stored_reason(entry, BLEEDING), stored_reason(entry, VARICOSE)) == ("INR fine.", "Above the veins.")
    assert override_text({BLEEDING: "Same.", VARICOSE: "Same."}) == "Same."
    assert stored_reason(MassageEntry(override_reason="Same.", overridden_rules=[BLEEDING]), BLEEDING) == "Same."
    assert stored_reason(MassageEntry(override_reason="Old.", overridden_rules=[]), BLEEDING) == ""


# --- ART protocols and the structure ---------------------------------------------------------


def test_the_protocol_select_groups_by_structure_and_names_it_for_the_script(client_of, therapist, session):
    page = client_of(therapist).get(f"{BASE}{session.pk}/change/").content.decode()
    soleus = Muscle.objects.get(code="soleus", clinic=None)
    protocol = ArtProtocol.objects.get(code="soleus", clinic=None)
    assert '<optgroup label="Soleus">' in page
    assert f'<option value="{protocol.pk}" data-structure="{soleus.pk}">ART: soleus</option>' in page
    assert 'src="/static/sessions/note_entry.js"' in page
    assert "<script>" not in page  # no inline script under the CSP


def test_a_protocol_of_another_structure_is_refused_by_the_admin(client_of, therapist, session):
    data = form_data(session) | {
        "art_entries-TOTAL_FORMS": "1",
        "art_entries-0-structure": str(Muscle.objects.get(code="soleus", clinic=None).pk),
        "art_entries-0-protocol": str(ArtProtocol.objects.get(code="hamstrings", clinic=None).pk),
        "art_entries-0-side": "left",
        "art_entries-0-passes": "3",
    }
    response = client_of(therapist).post(f"{BASE}{session.pk}/change/", data)
    assert response.status_code == 200
    assert "This protocol is for Hamstrings, not Soleus." in response.content.decode()
    assert not ArtEntry.objects.exists()


def test_a_protocol_of_another_structure_is_refused_by_the_service(therapist, session):
    entry = art(session, structure="soleus", protocol=ArtProtocol.objects.get(code="gastrocnemius", clinic=None))
    with pytest.raises(ValidationError) as refused:
        entry_save(entry=entry, actor=therapist)
    assert refused.value.message_dict == {"protocol": ["This protocol is for Gastrocnemius, not Soleus."]}
    matching = art(session, structure="soleus", protocol=ArtProtocol.objects.get(code="soleus", clinic=None))
    assert entry_save(entry=matching, actor=therapist).patient_movement.startswith("Patient actively dorsiflexes")


# --- a signed note -----------------------------------------------------------------------------


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_an_edit_of_a_signed_note_is_refused_with_exactly_one_message(client_of, therapist, session):
    signed = note_sign(session=session, actor=therapist)
    data = form_data(session, plan="Rewritten", **{"addenda-TOTAL_FORMS": "1"})
    response = client_of(therapist).post(f"{BASE}{session.pk}/change/", data, follow=True)
    assert messages_of(response) == [
        "This note is signed and locked: nothing was changed. Add an addendum to correct it."
    ]
    assert "changed successfully" not in response.content.decode()
    assert response.redirect_chain == [(f"{BASE}{session.pk}/change/", 302)]
    assert TreatmentSession.objects.get(pk=session.pk).content_hash == signed.content_hash


def test_an_addendum_to_a_signed_note_says_so_once(client_of, therapist, session):
    note_sign(session=session, actor=therapist)
    data = form_data(session, **{"addenda-TOTAL_FORMS": "1", "addenda-0-text": "Patient called: calf much better."})
    response = client_of(therapist).post(f"{BASE}{session.pk}/change/", data, follow=True)
    assert messages_of(response) == ["Addendum added. The signed note itself is unchanged."]
    assert session.addenda.get().text == "Patient called: calf much better."
