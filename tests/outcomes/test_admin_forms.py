"""Admin forms: a link for a licensed measure without its wording is a field error; the wording
must cover every item; links are created through the service (and sent through the outbox)."""

from __future__ import annotations

import pytest

from clinic.models import Message, MessageKind
from outcomes.models import MeasureText, OutcomeLink

pytestmark = pytest.mark.django_db


def test_a_link_for_a_licensed_measure_without_its_wording_is_a_field_error(client, owner, clinic, patient):
    client.force_login(owner)
    form = {"clinic": clinic.pk, "patient": patient.pk, "measure": "odi", "send": "on"}
    response = client.post("/admin/outcomes/outcomelink/add/", form)
    assert response.status_code == 200
    assert "enter your licensed wording" in response.content.decode()
    assert not OutcomeLink.objects.exists()
    response = client.post("/admin/outcomes/outcomelink/add/", form | {"measure": "nprs"})
    assert response.status_code == 302
    link = OutcomeLink.objects.get()
    assert Message.objects.filter(kind=MessageKind.OUTCOME_LINK, about_id=link.pk).exists()


def test_licensed_wording_must_cover_every_item(client, owner, clinic):
    client.force_login(owner)
    items = '{"s1": {"text": "Pain intensity", "options": ["a", "b", "c", "d", "e", "f"]}}'
    form = {"clinic": clinic.pk, "measure": "odi", "items": items, "licence_note": "Mapi 2026", "instructions": ""}
    response = client.post("/admin/outcomes/measuretext/add/", form)
    assert response.status_code == 200
    assert "s2: enter the item&#x27;s text." in response.content.decode()
    assert not MeasureText.objects.exists()
