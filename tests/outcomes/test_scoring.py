"""Each shipped measure scored as published. Sources are in each measure's definition file
(outcomes/measure_data/*.yaml) and repeated at each test.

Where the publication prints a worked example, the test reproduces it (ODI). Where it gives the
scoring formula and no numbers (NPRS, PSFS, LEFS, QuickDASH), the test applies that formula by
hand to answers written out here, and checks the extremes of the published range.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from outcomes.measures import clean_answers, measure_named, measures, score


def scored(code: str, answers: dict):
    measure = measure_named(code)
    return score(measure, clean_answers(measure, answers))


def test_every_definition_file_records_licence_source_and_mcid():
    assert set(measures()) == {"nprs", "psfs", "lefs", "odi", "quickdash"}
    for measure in measures().values():
        assert len(measure.licence) > 40, measure.code
        assert len(measure.source) > 40, measure.code
        assert measure.mcid > 0


def test_licensed_measures_ship_no_item_text():
    # ODI (Mapi Research Trust) and QuickDASH (IWH) may not be redistributed: placeholders only.
    for code in ("odi", "quickdash"):
        measure = measure_named(code)
        assert not measure.text_redistributable
        assert not measure.options
        assert not measure.instructions
        assert all(item.text.startswith(("Section", "Item")) for item in measure.items)


# --- NPRS: Childs, Piva & Fritz, Spine 2005;30:1331-4 (11-point scale, MCID 2) ------------------


def test_nprs_score_is_the_rating():
    assert scored("nprs", {"pain": 7}).score == Decimal("7.00")
    assert scored("nprs", {"pain": 0}).score == 0


def test_nprs_blank_is_incomplete_and_out_of_range_is_refused():
    result = scored("nprs", {"pain": None})
    assert (result.complete, result.score, result.missing) == (False, None, ["pain"])
    with pytest.raises(ValidationError) as refused:
        scored("nprs", {"pain": 11})
    assert "pain" in refused.value.message_dict


def test_nprs_mcid_is_two_points_down():
    nprs = measure_named("nprs")
    assert nprs.reached_mcid(Decimal(6), Decimal(4))
    assert not nprs.reached_mcid(Decimal(6), Decimal(5))
    assert not nprs.reached_mcid(Decimal(4), Decimal(6))  # worse pain is not an improvement


# --- PSFS: Stratford et al., Physiotherapy Canada 1995;47:258-63 ---------------------------------
# "Total score = sum of the activity scores / number of activities"; MCID 2 (Abbott & Schmitt 2014).


def test_psfs_total_is_the_mean_of_the_activity_scores():
    answers = {
        "activities": [{"name": "Kneel", "rating": 3}, {"name": "Run", "rating": 5}, {"name": "Stairs", "rating": 7}]
    }
    assert scored("psfs", answers).score == Decimal("5.00")  # (3 + 5 + 7) / 3
    two = {"activities": [{"name": "Kneel", "rating": 4}, {"name": "Run", "rating": 5}, {"name": "Lift", "rating": 7}]}
    assert scored("psfs", two).score == Decimal("5.33")  # 16 / 3, two places


def test_psfs_an_activity_without_its_rating_is_incomplete():
    answers = {"activities": [{"name": "Kneel", "rating": 3}, {"name": "Run", "rating": None}]}
    result = scored("psfs", answers)
    assert (result.complete, result.score, result.missing) == (False, None, ["rating_2"])
    assert not scored("psfs", {"activities": []}).complete


def test_psfs_refuses_a_sixth_activity():
    with pytest.raises(ValidationError):
        scored("psfs", {"activities": [{"name": f"a{n}", "rating": 5} for n in range(6)]})


# --- LEFS: Binkley et al., Phys Ther 1999;79:371-83 -----------------------------------------------
# Score = sum of the 20 items (0-4), 0-80; MCID 9 points.


def test_lefs_score_is_the_sum_of_twenty_items():
    assert scored("lefs", {f"q{n}": 4 for n in range(1, 21)}).score == 80
    assert scored("lefs", {f"q{n}": 0 for n in range(1, 21)}).score == 0
    mixed = {f"q{n}": (n % 5) for n in range(1, 21)}  # 1,2,3,4,0 four times = 40
    assert scored("lefs", mixed).score == 40


def test_lefs_with_a_blank_item_is_incomplete_never_a_lower_sum():
    answers = {f"q{n}": 3 for n in range(1, 21)} | {"q7": None}
    result = scored("lefs", answers)
    assert (result.complete, result.score, result.missing) == (False, None, ["q7"])


def test_lefs_mcid_is_nine_points_up():
    lefs = measure_named("lefs")
    assert lefs.reached_mcid(Decimal(38), Decimal(47))
    assert not lefs.reached_mcid(Decimal(38), Decimal(46))


# --- ODI 2.1a: Fairbank & Pynsent, Spine 2000;25:2940-52, scoring instructions --------------------
# Published worked examples: "16 (total scored) / 50 (total possible score) x 100 = 32%", and with
# one section missed "16 / 45 x 100 = 35.5%" (printed truncated; 35.56 to two places).

ODI_16 = {"s1": 3, "s2": 1, "s3": 2, "s4": 1, "s5": 2, "s6": 2, "s7": 1, "s8": 2, "s9": 1, "s10": 1}


def test_odi_published_example_all_sections():
    assert sum(ODI_16.values()) == 16
    assert scored("odi", ODI_16).score == Decimal("32.00")


def test_odi_published_example_one_section_missed():
    answers = ODI_16 | {"s8": None, "s1": 5}  # still 16 over the nine sections answered
    assert sum(v for v in answers.values() if v) == 16
    result = scored("odi", answers)
    assert result.complete
    assert result.score == Decimal("35.56")
    assert result.missing == ["s8"]


def test_odi_with_two_sections_missed_is_not_scored():
    result = scored("odi", ODI_16 | {"s8": None, "s10": None})
    assert (result.complete, result.score) == (False, None)


# --- QuickDASH: Beaton et al., JBJS Am 2005;87:1038-46; IWH scoring -------------------------------
# ((sum of n responses / n) - 1) x 25; not calculated with more than one item missing.


def test_quickdash_formula():
    assert scored("quickdash", {f"q{n}": 1 for n in range(1, 12)}).score == 0
    assert scored("quickdash", {f"q{n}": 5 for n in range(1, 12)}).score == 100
    answers = dict(zip([f"q{n}" for n in range(1, 12)], [3, 3, 2, 4, 3, 3, 3, 2, 4, 3, 3], strict=True))
    assert scored("quickdash", answers).score == Decimal("50.00")  # (33 / 11 - 1) x 25
    answers = dict(zip([f"q{n}" for n in range(1, 12)], [2, 2, 3, 1, 2, 2, 1, 2, 2, 3, 3], strict=True))
    assert scored("quickdash", answers).score == Decimal("27.27")  # (23 / 11 - 1) x 25 = 27.27...


def test_quickdash_one_missing_item_is_scored_over_the_rest_two_are_not():
    answers = {f"q{n}": 3 for n in range(1, 12)} | {"q4": None}
    result = scored("quickdash", answers)
    assert result.complete
    assert result.score == Decimal("50.00")
    assert result.missing == ["q4"]
    assert not scored("quickdash", answers | {"q5": None}).complete


def test_unknown_items_and_non_numbers_are_refused_with_the_field_named():
    with pytest.raises(ValidationError) as refused:
        scored("lefs", {"q1": "a lot", "q99": 1})
    assert set(refused.value.message_dict) == {"q1", "answers"}
    with pytest.raises(ValidationError):
        scored("nprs", {"pain": True})
