"""The catalog search a therapist types into: muscles and points by partial, common and
Latin names, and point codes however they are written (admin autocomplete on the note)."""

from __future__ import annotations

import pytest

from treatments.models import AcupuncturePoint, Muscle
from treatments.selectors import catalog_search, point_code, search_words

pytestmark = pytest.mark.django_db

AUTOCOMPLETE = "/admin/autocomplete/"


def codes(queryset) -> list[str]:
    return [row.code for row in queryset]


def autocomplete(client, field: str, term: str, model: str = "artentry") -> list[str]:
    response = client.get(
        AUTOCOMPLETE,
        {"app_label": "treatment_sessions", "model_name": model, "field_name": field, "term": term},
    )
    assert response.status_code == 200, response.content
    return [row["text"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("GB34", "GB34"), ("gb 34", "GB34"), ("GB-34", "GB34"), ("ex le 4", "EX-LE4"), ("EX-LE4", "EX-LE4"),
     ("gluteus", None), ("calf", None)],
)  # fmt: skip
def test_point_code_reads_the_code_however_it_is_typed(typed, expected):
    assert point_code(typed) == expected


def test_search_words_drop_accents_punctuation_and_control_characters():
    assert search_words("  Yánglíngquán, GB/34 ") == ["Yanglingquan", "GB", "34"]
    assert search_words("glu\x00teus\u200b") == ["gluteus"]


def test_gluteus_finds_the_gluteal_muscles_by_their_latin_names(catalogs):
    assert codes(catalog_search(Muscle.objects.all(), "gluteus", related=("region",))) == ["gluteals"]
    assert codes(catalog_search(Muscle.objects.all(), "gluteus medius", related=("region",))) == ["gluteals"]


def test_calf_finds_the_calf_muscles_by_region_and_common_name(catalogs):
    found = codes(catalog_search(Muscle.objects.all(), "calf", related=("region",)))
    assert {"gastrocnemius", "soleus", "achilles_tendon"} <= set(found)
    assert "hamstrings" not in found
    assert "quadriceps" not in found


@pytest.mark.parametrize("typed", ["GB34", "gb34", "GB 34", "gb-34", "Yanglingquan", "yangling", "Yang Ling Quan",
                                   "Yánglíngquán", "yang mound spring"])  # fmt: skip
def test_gb34_is_found_by_code_pinyin_and_english_name(catalogs, typed):
    found = codes(catalog_search(AcupuncturePoint.objects.all(), typed))
    assert found[0] == "GB34"
    assert "SP9" not in found  # Yinlingquan is another point


def test_gb34_by_code_does_not_bring_st34(catalogs):
    assert codes(catalog_search(AcupuncturePoint.objects.all(), "GB 34")) == ["GB34"]


def test_a_partial_code_lists_the_points_it_starts(catalogs):
    assert codes(catalog_search(AcupuncturePoint.objects.all(), "gb3")) == ["GB30", "GB31", "GB34", "GB39"]


def test_nothing_typed_changes_nothing(catalogs):
    assert catalog_search(Muscle.objects.all(), "   ").count() == Muscle.objects.count()


def test_the_note_autocomplete_finds_muscles_and_points(client, therapist, practitioner, catalogs):
    client.force_login(therapist)
    assert autocomplete(client, "structure", "gluteus") == ["Gluteal muscles"]
    calf = autocomplete(client, "structure", "calf")
    assert {"Gastrocnemius", "Soleus"} <= set(calf)
    assert autocomplete(client, "point", "GB 34", model="acupunctureentry")[0] == "GB34 Yanglingquan"
    assert autocomplete(client, "point", "Yanglingquan", model="acupunctureentry") == ["GB34 Yanglingquan"]
    assert autocomplete(client, "point", "GB34", model="acupunctureentry") == ["GB34 Yanglingquan"]
    assert "Calf" in autocomplete(client, "region", "calf", model="massageentry")
    assert "Hip / buttock" in autocomplete(client, "region", "gluteal", model="massageentry")


def test_an_odd_search_is_no_error(client, therapist, practitioner, catalogs):
    client.force_login(therapist)
    assert autocomplete(client, "structure", "\x00") != []  # nothing left to search by: every row
    assert autocomplete(client, "point", "%_'\"", model="acupunctureentry") == []


def test_the_autocomplete_keeps_another_clinics_additions_out(client, therapist, practitioner, catalogs, other_clinic):
    region = Muscle.objects.get(code="gluteals").region
    Muscle.objects.create(clinic=other_clinic, code="glute_med", name="Gluteus medius (theirs)", region=region)
    client.force_login(therapist)
    assert autocomplete(client, "structure", "gluteus") == ["Gluteal muscles"]
