"""Owner settings without raw JSON (issue 14, item 6): reminder lead times, quiet hours and
templates as form fields with field errors and a preview; API keys created (secret once),
listed and revoked in the admin."""

from __future__ import annotations

import pytest
from django.test import Client

from clinic.api.authentication import api_key_digest
from clinic.models import ApiKey, MessageTemplate, ReminderPolicy

pytestmark = pytest.mark.django_db

POLICY_ADD = "/admin/clinic/reminderpolicy/add/"
TEMPLATE_ADD = "/admin/clinic/messagetemplate/add/"
KEYS = "/admin/clinic/apikey/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def policy_form(clinic, **fields) -> dict:
    data = {
        "clinic": str(clinic.pk),
        "lead_1_hours": "48", "lead_1_channel": "email",
        "lead_2_hours": "2", "lead_2_channel": "sms",
        "quiet_hours_start": "21:00", "quiet_hours_end": "08:00",
        "confirmations_immediate": "on", "intake_nudge_hours": "24", "followup_second_nudge_days": "7",
    }  # fmt: skip
    return {**data, **fields}


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"lead_1_hours": "0"}, "lead_1_hours", "greater than or equal to 1"),
        ({"lead_1_hours": "721"}, "lead_1_hours", "less than or equal to 720"),
        ({"lead_1_hours": "two"}, "lead_1_hours", "Enter a whole number"),
        ({"lead_2_channel": ""}, "lead_2_channel", "Choose email or SMS"),
        ({"lead_3_channel": "sms"}, "lead_3_hours", "Enter how many hours"),
        ({"lead_2_hours": "48", "lead_2_channel": "email"}, "lead_2_hours", "Same as reminder 1"),
        ({"quiet_hours_end": ""}, "quiet_hours_end", "Set both ends"),
        ({"quiet_hours_start": "25:00"}, "quiet_hours_start", "Enter a valid time"),
    ],
)
def test_a_bad_lead_time_or_quiet_hour_is_a_field_error_and_nothing_is_saved(owner, clinic, fields, field, says):
    response = _client(owner).post(POLICY_ADD, policy_form(clinic, **fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert says in " ".join(errors[field]), errors
    assert not ReminderPolicy.objects.exists()


def test_good_lead_times_are_saved_as_the_policy_list(owner, clinic):
    response = _client(owner).post(POLICY_ADD, policy_form(clinic, lead_3_hours="24", lead_3_channel="sms"))
    assert response.status_code == 302
    policy = ReminderPolicy.objects.get(clinic=clinic)
    assert policy.lead_times == [
        {"hours": 48, "channel": "email"},
        {"hours": 24, "channel": "sms"},
        {"hours": 2, "channel": "sms"},
    ]
    page = _client(owner).get(f"/admin/clinic/reminderpolicy/{policy.pk}/change/").content.decode()
    assert 'name="lead_2_hours" value="24"' in page
    assert "Preview of the saved settings" in page


def test_preview_shows_when_reminders_go_out_and_the_rendered_text_without_saving(owner, clinic, practitioner):
    response = _client(owner).post(
        POLICY_ADD, policy_form(clinic, lead_2_hours="12", lead_2_channel="sms", _preview="Preview")
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert not ReminderPolicy.objects.exists()
    assert "Preview only: nothing was saved." in page
    assert "Please correct" not in page
    assert "Preview of these settings" in page
    # The example visit is a Tuesday at 10:00; 12 h before is 22:00, inside quiet hours (21-08).
    assert "SMS reminder 12 h before:" in page
    assert "(moved out of quiet hours)" in page
    assert "Riverside: reminder of your appointment with Theo Therapist on Tuesday" in page
    assert "{{" not in page.split('id="message-preview"')[1]


def test_a_template_preview_renders_the_clinic_text_and_a_broken_template_is_a_field_error(owner, clinic):
    client = _client(owner)
    data = {"clinic": str(clinic.pk), "kind": "appointment_reminder", "channel": "sms",
            "body": "Hi {{ patient_name }}, see you {{ appointment_when }} at {{ clinic_name }}."}  # fmt: skip
    page = client.post(TEMPLATE_ADD, {**data, "_preview": "Preview"}).content.decode()
    assert "Hi Alex, see you Tuesday" in page
    assert "at Riverside." in page
    assert not MessageTemplate.objects.exists()
    broken = client.post(TEMPLATE_ADD, {**data, "body": "Hi {% if %}"})
    assert "Template error" in " ".join(broken.context["adminform"].form.errors["body"])
    with_subject = client.post(TEMPLATE_ADD, {**data, "subject": "Hello"})
    assert "no subject" in " ".join(with_subject.context["adminform"].form.errors["subject"])
    assert client.post(TEMPLATE_ADD, data).status_code == 302
    assert MessageTemplate.objects.get().body.startswith("Hi {{ patient_name }}")


def test_an_api_key_is_created_in_the_admin_its_secret_shown_once_then_listed_and_revoked(owner, clinic):
    client = _client(owner)
    response = client.post(
        f"{KEYS}add/", {"clinic": str(clinic.pk), "name": "Booking site", "scopes": ["appointments:read"]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = response.context["secret"]
    assert secret.startswith("ck_")
    assert f'value="{secret}"' in response.content.decode()
    key = ApiKey.objects.get()
    assert key.digest == api_key_digest(secret)
    assert key.created_by == owner
    listing = client.get(KEYS).content.decode()
    assert "Booking site" in listing
    assert key.prefix in listing
    assert secret not in listing
    assert secret not in client.get(f"{KEYS}{key.pk}/change/").content.decode()
    done = client.post(KEYS, {"action": "revoke", "_selected_action": [str(key.pk)]})
    assert done.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_a_key_without_scopes_is_a_field_error(owner, clinic):
    response = _client(owner).post(f"{KEYS}add/", {"clinic": str(clinic.pk), "name": "Nothing"})
    assert "scopes" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()


def test_therapists_and_receptionists_cannot_manage_keys_or_reminders(therapist, receptionist):
    for user in (therapist, receptionist):
        client = _client(user)
        assert client.get(f"{KEYS}add/").status_code == 403
        assert client.get(POLICY_ADD).status_code == 403
