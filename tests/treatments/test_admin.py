"""Catalog admin: shared rows are read-only to clinic staff; a clinic edits its own additions."""

from __future__ import annotations

import pytest

from treatments.models import BodyRegion, Muscle

pytestmark = pytest.mark.django_db


def test_an_owner_adds_a_clinic_muscle_but_cannot_edit_a_shared_one(client, owner, clinic, catalogs):
    client.force_login(owner)
    shared = Muscle.objects.get(code="soleus")
    calf = BodyRegion.objects.get(code="calf")
    assert client.get(f"/admin/treatments/muscle/{shared.pk}/change/").status_code == 200  # view only
    refused = client.post(
        f"/admin/treatments/muscle/{shared.pk}/change/",
        {"code": "soleus", "name": "Renamed", "kind": "muscle", "region": calf.pk, "is_active": "on"},
    )
    assert refused.status_code == 403
    assert Muscle.objects.get(pk=shared.pk).name == "Soleus"
    added = client.post(
        "/admin/treatments/muscle/add/",
        {"clinic": clinic.pk, "code": "plantaris", "name": "Plantaris", "kind": "muscle", "region": calf.pk,
         "is_active": "on"},
    )  # fmt: skip
    assert added.status_code == 302
    assert Muscle.objects.get(code="plantaris").clinic == clinic


def test_a_clinic_addition_needs_a_clinic_and_stays_out_of_other_clinics(client, owner, other_therapist, catalogs):
    client.force_login(owner)
    calf = BodyRegion.objects.get(code="calf")
    response = client.post(
        "/admin/treatments/muscle/add/",
        {"code": "plantaris", "name": "Plantaris", "kind": "muscle", "region": calf.pk, "is_active": "on"},
    )
    assert response.status_code == 200
    assert "clinic" in response.context["adminform"].form.errors
    mine = Muscle.objects.create(clinic=owner.memberships.get().clinic, code="mine", name="Mine", region=calf)
    client.force_login(other_therapist)
    assert client.get(f"/admin/treatments/muscle/{mine.pk}/change/").status_code == 302  # "does not exist"
