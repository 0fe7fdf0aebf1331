"""Catalogs: loaded idempotently from catalog_data/, WHO codes validated, clinic additions
kept to their clinic, read-only over the API."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from treatments.catalogs import load_catalogs
from treatments.models import (
    AcupuncturePoint,
    ArtProtocol,
    BodyRegion,
    Modality,
    Muscle,
    TriggerPoint,
    validate_point_code,
)

pytestmark = pytest.mark.django_db

CATALOGS = (Modality, BodyRegion, Muscle, TriggerPoint, ArtProtocol, AcupuncturePoint)

MUSCLES_IN_DOMAIN = {
    "gastrocnemius", "soleus", "tibialis_anterior", "peroneals", "achilles_tendon", "quadriceps", "hamstrings",
    "adductors", "gluteals", "piriformis", "hip_flexors", "iliotibial_band", "abdominal_muscles",
    "lower_back_muscles", "knee_ligaments", "meniscus", "patellofemoral_joint", "plantar_fascia", "heel_fat_pad",
    "transverse_carpal_ligament", "wrist_extensors",
}  # fmt: skip
POINTS_IN_DOMAIN = {
    "GB30": "Huantiao", "GB31": "Fengshi", "GB34": "Yanglingquan", "GB39": "Xuanzhong", "BL23": "Shenshu",
    "BL25": "Dachangshu", "BL36": "Chengfu", "BL37": "Yinmen", "BL40": "Weizhong", "BL57": "Chengshan",
    "BL60": "Kunlun", "ST34": "Liangqiu", "ST35": "Dubi", "ST36": "Zusanli", "SP6": "Sanyinjiao",
    "SP9": "Yinlingquan", "LR3": "Taichong", "KI3": "Taixi", "LI4": "Hegu",
}  # fmt: skip


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in CATALOGS}


def test_loading_twice_adds_nothing_the_second_time():
    first = load_catalogs()
    loaded = counts()
    second = load_catalogs()
    assert all(first[name] > 0 for name in first)
    assert set(second.values()) == {0}
    assert counts() == loaded
    assert TriggerPoint.objects.get(code="gastrocnemius_medial").referral_regions.count() == 3


def test_the_management_command_loads_every_catalog(db):
    out = StringIO()
    call_command("load_catalogs", stdout=out)
    assert "acupuncture points: 31 new" in out.getvalue()
    call_command("load_catalogs", stdout=out)
    assert "acupuncture points: 0 new, 0 updated" in out.getvalue()


def test_reloading_restores_a_shared_row_that_drifted(catalogs):
    Muscle.objects.filter(code="soleus").update(name="Renamed")
    AcupuncturePoint.objects.filter(code="SP6").update(avoid_in_pregnancy=False)
    load_catalogs()
    assert Muscle.objects.get(code="soleus").name == "Soleus"
    assert AcupuncturePoint.objects.get(code="SP6").avoid_in_pregnancy is True


def test_every_muscle_and_point_named_in_the_domain_brief_is_in_the_catalog(catalogs):
    assert set(Muscle.objects.values_list("code", flat=True)) >= MUSCLES_IN_DOMAIN
    points = dict(AcupuncturePoint.objects.values_list("code", "name"))
    assert {code: points.get(code) for code in POINTS_IN_DOMAIN} == POINTS_IN_DOMAIN


def test_points_avoided_in_pregnancy_are_marked(catalogs):
    marked = set(AcupuncturePoint.objects.filter(avoid_in_pregnancy=True).values_list("code", flat=True))
    assert {"LI4", "SP6", "BL60", "BL67", "GB21"} <= marked
    assert {"BL23", "BL25", "CV4", "CV6"} <= marked  # lumbosacral and abdominal points
    assert "ST36" not in marked


def test_every_structure_has_a_region_and_every_protocol_a_movement(catalogs):
    assert not Muscle.objects.filter(region__isnull=True).exists()
    assert not ArtProtocol.objects.filter(patient_movement="").exists()
    assert ArtProtocol.objects.filter(structure__code="median_nerve").exists()  # carpal tunnel
    assert ArtProtocol.objects.filter(structure__code="wrist_extensors").exists()  # tennis elbow
    assert BodyRegion.objects.get(code="calf").lineage_codes() == ["calf", "lower_leg", "leg"]


@pytest.mark.parametrize("code", ["ST36", "GV4", "CV24", "BL67", "EX-LE4", "EX-B2", "EX-HN3"])
def test_who_codes_are_accepted(code):
    validate_point_code(code)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("XX1", "not a WHO point code"),
        ("ST", "not a WHO point code"),
        ("ST0", "not a WHO point code"),
        ("st36", "not a WHO point code"),
        ("ST46", "ST meridian has points 1 to 45"),
        ("HT10", "HT meridian has points 1 to 9"),
        ("EX-ZZ1", "not a WHO point code"),
    ],
)
def test_unknown_codes_are_refused_with_a_clear_message(code, message):
    with pytest.raises(ValidationError, match=message):
        validate_point_code(code)


def test_a_governor_vessel_point_must_be_midline(catalogs, clinic):
    point = AcupuncturePoint(
        clinic=clinic, code="GV20", name="Baihui", meridian="GV", region=BodyRegion.objects.get(code="neck")
    )
    with pytest.raises(ValidationError) as caught:
        point.full_clean()
    assert "is_midline" in caught.value.message_dict


def test_a_clinic_may_add_a_row_with_a_shared_code_but_not_twice(catalogs, clinic, other_clinic):
    region = BodyRegion.objects.get(code="calf")
    Muscle(clinic=clinic, code="soleus", name="Soleus (our notes)", region=region).full_clean()
    Muscle.objects.create(clinic=clinic, code="plantaris", name="Plantaris", region=region)
    Muscle(clinic=other_clinic, code="plantaris", name="Plantaris", region=region).full_clean()
    with pytest.raises(ValidationError):
        Muscle(clinic=clinic, code="plantaris", name="Plantaris again", region=region).full_clean()
    with pytest.raises(ValidationError):
        Muscle(code="soleus", name="Shared duplicate", region=region).full_clean()


# --- API ------------------------------------------------------------------------------


def test_catalog_api_shows_shared_rows_and_only_the_callers_additions(catalogs, receptionist_api, clinic, other_clinic):
    region = BodyRegion.objects.get(code="calf")
    Muscle.objects.create(clinic=clinic, code="plantaris", name="Plantaris", region=region)
    Muscle.objects.create(clinic=other_clinic, code="secret", name="Other clinic's", region=region)
    codes, url = set(), "/api/v1/catalogs/muscles/?page_size=100"
    while url:
        page = receptionist_api.get(url).json()
        codes |= {row["code"] for row in page["results"]}
        url = page["next"]
    assert "plantaris" in codes
    assert "gastrocnemius" in codes
    assert "secret" not in codes
    assert receptionist_api.get("/api/v1/catalogs/muscles/secret/").status_code == 404


def test_acupuncture_point_detail_by_code(catalogs, therapist_api):
    body = therapist_api.get("/api/v1/catalogs/acupuncture-points/SP6/").json()
    assert body["name"] == "Sanyinjiao"
    assert body["avoid_in_pregnancy"] is True
    assert body["region"] == "lower_leg"


def test_catalogs_are_read_only_over_the_api(catalogs, owner_api):
    response = owner_api.post("/api/v1/catalogs/muscles/", {"code": "x", "name": "X"})
    assert response.status_code == 405
    assert not Muscle.objects.filter(code="x").exists()


def test_an_api_key_needs_the_catalogs_scope(catalogs, api, clinic):
    from clinic.services import api_key_create

    _, with_scope = api_key_create(clinic=clinic, name="ehr", scopes=["catalogs:read"])
    _, without = api_key_create(clinic=clinic, name="site", scopes=["clinic:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {with_scope}")
    assert api.get("/api/v1/catalogs/trigger-points/").status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {without}")
    assert api.get("/api/v1/catalogs/trigger-points/").status_code == 403
