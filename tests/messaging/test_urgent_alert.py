"""An urgent intake answer: the patient is told what to do, the clinic is alerted at once (one
email each to the practitioner of the next visit and to the owners, no clinical detail), the
alert is written with the submission, never twice, and its opening is audited."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import connection, transaction

from clinic.messaging.render import message_render
from clinic.messaging.sending import message_send, messages_claim_due
from clinic.models import AuditEvent, Message, MessageKind, MessageStatus
from intake.messages import GENERIC_URGENT_ADVICE, URGENT_ADVICE, urgent_advice, urgent_intake_alert_create
from intake.services import LinkUnavailableError, intake_submit
from patients.messages import patient_opt_out
from sessions import services
from tests.factories import clean_intake_answers, intake_link
from tests.sessions.conftest import local

URGENT = {"calf_swollen": True, "calf_swollen_side": "right"}


def alerts():
    return Message.objects.filter(kind=MessageKind.URGENT_INTAKE_ALERT).order_by("to_user_id")


def _booked_link(desk):
    appointment = services.appointment_book(
        clinic=desk.clinic, patient=desk.patient, practitioner=desk.practitioner, service=desk.massage,
        start=local(2027, 3, 3, 10),
    )  # fmt: skip
    return intake_link(desk.patient, appointment=appointment)


@pytest.mark.django_db
def test_an_urgent_answer_alerts_the_next_practitioner_and_the_owners_once(desk, owner, therapist):
    link = _booked_link(desk)
    submission = intake_submit(link=link, answers=clean_intake_answers(**URGENT))
    rows = list(alerts())
    assert {row.to_user for row in rows} == {owner, therapist}
    assert {row.patient_id for row in rows} == {desk.patient.pk}
    assert all(row.status == MessageStatus.SCHEDULED and row.immediate for row in rows)
    token, ids = messages_claim_due(limit=50)
    for pk in ids:
        message_send(message_id=pk, claim_token=str(token))
    sent = {email.to[0]: email for email in mail.outbox if "urgent" in email.subject}
    assert set(sent) == {owner.email, therapist.email}
    email = sent[owner.email]
    assert email.subject == "An urgent intake answer needs review"
    alert = alerts().get(to_user=owner)
    assert email.body == f"An urgent intake answer needs review.\n\nhttp://127.0.0.1:8000/staff/alerts/{alert.pk}/\n"
    assert "List-Unsubscribe" not in email.extra_headers
    for word in (desk.patient.family_name, desk.patient.given_name, "calf", "thrombosis", "intakesubmission"):
        assert word not in email.body
    assert submission.pk


@pytest.mark.django_db
def test_writing_the_alerts_again_changes_nothing(desk, owner, therapist):
    link = _booked_link(desk)
    submission = intake_submit(link=link, answers=clean_intake_answers(**URGENT))
    first = list(alerts().values_list("pk", flat=True))
    again = urgent_intake_alert_create(link=link, submission=submission, flags=list(submission.flags.all()))
    assert sorted(row.pk for row in again) == sorted(first)
    assert alerts().count() == 2


@pytest.mark.django_db
def test_answers_with_no_urgent_flag_alert_nobody(desk, owner):
    intake_submit(link=_booked_link(desk), answers=clean_intake_answers(anticoagulants=True))
    assert not alerts().exists()


@pytest.mark.django_db
def test_a_staff_alert_ignores_the_patients_opt_out_and_clinic_wording(desk, owner):
    link = _booked_link(desk)
    intake_submit(link=link, answers=clean_intake_answers(**URGENT))
    patient_opt_out(patient=desk.patient, channel="email", source="staff")
    alert = alerts().get(to_user=owner)
    assert alert.status == MessageStatus.SCHEDULED
    _, body = message_render(alert)
    assert body.startswith("An urgent intake answer needs review.")


@pytest.mark.django_db
def test_opening_the_alert_is_audited_and_leads_to_the_submission(client, desk, owner, therapist, receptionist):
    intake_submit(link=_booked_link(desk), answers=clean_intake_answers(**URGENT))
    mine = alerts().get(to_user=therapist)
    client.force_login(receptionist)
    assert client.get(f"/staff/alerts/{mine.pk}/").status_code == 404  # neither its recipient nor an owner
    client.force_login(therapist)
    response = client.get(f"/staff/alerts/{mine.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/intake/intakesubmission/")
    mine.refresh_from_db()
    assert mine.opened_at is not None
    event = AuditEvent.objects.filter(via="staff_alert").get()
    assert (event.actor, event.action, event.patient_id) == (therapist, "view", desk.patient.pk)
    client.force_login(owner)  # an owner may open any alert of the clinic
    assert client.get(f"/staff/alerts/{mine.pk}/").status_code == 302
    client.logout()
    assert client.get(f"/staff/alerts/{mine.pk}/").status_code == 302  # to sign-in
    assert AuditEvent.objects.filter(via="staff_alert").count() == 2


@pytest.mark.django_db
def test_the_thank_you_page_tells_the_patient_what_to_do(client, desk):
    link = _booked_link(desk)
    intake_submit(link=link, answers=clean_intake_answers(**URGENT))
    page = client.get(f"/intake/{link.token}/thanks/")
    text = page.content.decode()
    assert "Please read this now" in text
    assert "Please call your doctor today, before your treatment." in text
    assert "call emergency services now" in text


@pytest.mark.django_db
def test_a_plain_thank_you_without_urgent_flags(client, desk):
    link = _booked_link(desk)
    intake_submit(link=link, answers=clean_intake_answers())
    text = client.get(f"/intake/{link.token}/thanks/").content.decode()
    assert "Please read this now" not in text
    assert "has your answers" in text


def test_every_urgent_rule_of_the_shipped_forms_has_patient_advice():
    # The rules of the leg form by name; other forms' urgent rules fall back on words in their code.
    assert set(URGENT_ADVICE) >= {
        "dvt_suspected", "cauda_equina", "progressive_weakness_foot_drop", "recent_trauma_possible_fracture",
        "systemic_red_flags",
    }  # fmt: skip
    assert "emergency" in urgent_advice("cervical_artery_dissection")
    assert "emergency" in urgent_advice("arm_pain_cardiac")
    assert urgent_advice("something_new") == GENERIC_URGENT_ADVICE


def _in_parallel(work, times: int = 2) -> list[str]:
    """Run `work` on `times` threads (each its own PostgreSQL connection), started together."""
    start = threading.Barrier(times)
    outcomes: list[str] = []

    def run():
        try:
            start.wait()
            outcomes.append(work())
        except LinkUnavailableError as exc:
            outcomes.append(exc.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


@pytest.mark.django_db(transaction=True)
def test_the_same_intake_submitted_twice_in_parallel_raises_exactly_one_alert_each(desk, owner, therapist):
    """Two real connections submit one link at the same moment (a double tap, two phones):
    one submission, one alert per recipient."""
    link = _booked_link(desk)
    answers = clean_intake_answers(**URGENT)
    outcomes = _in_parallel(lambda: intake_submit(link=link, answers=answers) and "stored")
    assert outcomes == ["stored", "submitted"]
    assert sorted(alerts().values_list("to_user_id", flat=True)) == sorted([owner.pk, therapist.pk])


@pytest.mark.django_db(transaction=True)
def test_two_alert_writers_at_once_still_leave_one_alert_each(desk, owner, therapist):
    """Below the link's lock, the outbox's unique key holds on its own: two transactions
    writing the same alerts at once (no lock between them) leave one row per recipient."""
    link = _booked_link(desk)
    submission = intake_submit(link=link, answers=clean_intake_answers(**URGENT))
    Message.objects.filter(kind=MessageKind.URGENT_INTAKE_ALERT).delete()
    flags = list(submission.flags.all())

    def write():
        with transaction.atomic():
            urgent_intake_alert_create(link=link, submission=submission, flags=flags)
        return "written"

    assert _in_parallel(write, times=3) == ["written"] * 3
    assert sorted(alerts().values_list("to_user_id", flat=True)) == sorted([owner.pk, therapist.pk])


@pytest.mark.django_db
def test_the_admin_landing_page_lists_the_alert_until_it_is_opened(client, desk, owner, receptionist):
    intake_submit(link=_booked_link(desk), answers=clean_intake_answers(**URGENT))
    alert = alerts().get(to_user=owner)
    client.force_login(owner)
    landing = client.get("/admin/").content.decode()
    assert "Needs review now" in landing
    assert f'href="/staff/alerts/{alert.pk}/">Urgent intake answer needs review</a>' in landing
    # The alert itself names no patient and no condition (the owner's flags panel, elsewhere on
    # the page, is where clinical detail belongs).
    alert_box = landing.split('class="module staff-alerts"')[1].split("</div>")[0]
    assert desk.patient.family_name not in alert_box
    assert "thrombosis" not in alert_box.lower()
    client.get(f"/staff/alerts/{alert.pk}/")
    assert "Needs review now" not in client.get("/admin/").content.decode()
    client.force_login(receptionist)
    assert "Needs review now" not in client.get("/admin/").content.decode()
