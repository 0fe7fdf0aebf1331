"""Screening rules of the default intake: every row of DOMAIN.md's red-flag table, hit and miss.

The answers go through the form's own cleaning first, as a submission's do.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from intake.catalogs import read_definition
from intake.definition import parse_form
from intake.screening import screen
from tests.factories import clean_intake_answers

FORM = parse_form(read_definition("leg_knee_back_pain.yaml"))
RED_FLAG_RULES = {
    "dvt_suspected", "varicose_veins", "circulation_or_diabetic_sensation", "cauda_equina",
    "progressive_weakness_foot_drop", "recent_trauma_possible_fracture", "systemic_red_flags",
    "anticoagulant_or_bleeding", "pregnancy", "implanted_device", "thigh_injection_history",
}  # fmt: skip


def hits(**overrides) -> list[tuple[str, str, str, str]]:
    answers = FORM.clean(clean_intake_answers(**overrides))
    return [(h.rule.code, h.rule.severity, h.region, h.side) for h in screen(FORM, answers)]


def test_the_default_intake_has_a_rule_for_every_red_flag_row_and_nothing_fires_on_clean_answers():
    assert {rule.code for rule in FORM.rules} == RED_FLAG_RULES
    assert hits() == []


POSITIVE = [
    ({"calf_swollen": True, "calf_swollen_side": "left"}, ("dvt_suspected", "urgent", "leg", "left")),
    ({"conditions": ["past_blood_clot"]}, ("dvt_suspected", "urgent", "leg", "")),
    ({"conditions": ["recent_surgery_immobilisation"]}, ("dvt_suspected", "urgent", "leg", "")),
    ({"conditions": ["varicose_veins"], "varicose_regions": [{"region": "calf", "side": "right"}]},
     ("varicose_veins", "caution", "calf", "right")),
    ({"local_factors": ["varicose_veins"]}, ("varicose_veins", "caution", "leg", "")),
    ({"conditions": ["poor_circulation"]}, ("circulation_or_diabetic_sensation", "caution", "leg", "")),
    ({"conditions": ["diabetes"], "diabetic_reduced_sensation": True},
     ("circulation_or_diabetic_sensation", "caution", "leg", "")),
    ({"saddle_numbness": True}, ("cauda_equina", "urgent", "", "")),
    ({"bladder_bowel": True}, ("cauda_equina", "urgent", "", "")),
    ({"both_legs_weak": True}, ("cauda_equina", "urgent", "", "")),
    ({"progressive_weakness": True, "weakness_side": "both"},
     [("cauda_equina", "urgent", "", ""), ("progressive_weakness_foot_drop", "urgent", "leg", "both")]),
    ({"progressive_weakness": True, "weakness_side": "right"},
     ("progressive_weakness_foot_drop", "urgent", "leg", "right")),
    ({"foot_drop": True}, ("progressive_weakness_foot_drop", "urgent", "leg", "")),
    ({"recent_trauma": True, "trauma_bone_pain": True, "trauma_regions": [{"region": "shin", "side": "left"}]},
     ("recent_trauma_possible_fracture", "urgent", "shin", "left")),
    ({"fever": True}, ("systemic_red_flags", "urgent", "", "")),
    ({"weight_loss": True}, ("systemic_red_flags", "urgent", "", "")),
    ({"night_pain": True}, ("systemic_red_flags", "urgent", "", "")),
    ({"conditions": ["cancer_history"]}, ("systemic_red_flags", "urgent", "", "")),
    ({"anticoagulants": True}, ("anticoagulant_or_bleeding", "caution", "", "")),
    ({"conditions": ["bleeding_disorder"]}, ("anticoagulant_or_bleeding", "caution", "", "")),
    ({"conditions": ["pregnancy"]}, ("pregnancy", "caution", "", "")),
    ({"conditions": ["implanted_device"], "implant_details": "Pacemaker"}, ("implanted_device", "caution", "", "")),
    ({"causes": ["thigh_injection"], "thigh_injection_side": "right"},
     ("thigh_injection_history", "caution", "thigh", "right")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "expected"),
    POSITIVE,
    ids=[f"{e[0] if isinstance(e, tuple) else e[0][0]}-{i}" for i, (_, e) in enumerate(POSITIVE)],
)
def test_each_red_flag_answer_raises_its_flag_with_severity_region_and_side(overrides, expected):
    assert hits(**overrides) == (expected if isinstance(expected, list) else [expected])


NEGATIVE = [
    ("dvt_suspected", {"calf_swollen": False, "conditions": ["diabetes"], "diabetic_reduced_sensation": False}),
    ("varicose_veins", {"local_factors": ["overuse", "arthritis"]}),
    ("circulation_or_diabetic_sensation", {"conditions": ["diabetes"], "diabetic_reduced_sensation": False}),
    ("cauda_equina", {"pain_radiates": True, "sciatica_side": "both", "sciatica_symptoms": ["numbness", "weakness"]}),
    ("progressive_weakness_foot_drop", {"spine_symptoms": ["weakness", "walking_problems"]}),
    ("progressive_weakness_foot_drop", {"both_legs_weak": True}),
    ("cauda_equina", {"progressive_weakness": True, "foot_drop": True, "weakness_side": "right"}),
    ("cauda_equina", {"foot_drop": True, "weakness_side": "both"}),
    ("recent_trauma_possible_fracture", {"recent_trauma": True, "trauma_bone_pain": False}),
    ("systemic_red_flags", {"aggravating": ["night"], "sciatica_symptoms": None}),
    ("systemic_red_flags", {"unwell": True}),
    ("anticoagulant_or_bleeding", {"medications": "Ibuprofen when needed"}),
    ("pregnancy", {"conditions": ["diabetes"], "diabetic_reduced_sensation": False}),
    ("implanted_device", {"conditions": ["none"]}),
    ("thigh_injection_history", {"causes": ["horseback_riding", "sustained_pressure"]}),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "overrides"), NEGATIVE, ids=[rule for rule, _ in NEGATIVE])
def test_near_miss_answers_do_not_raise_the_flag(rule, overrides):
    assert rule not in {code for code, *_ in hits(**overrides)}


def test_worsening_weakness_in_one_leg_is_referred_for_assessment_not_as_cauda_equina():
    # The patient of issue 16: a foot drop getting worse on one side, both legs not weak.
    assert hits(both_legs_weak=False, progressive_weakness=True, foot_drop=True, weakness_side="right") == [
        ("progressive_weakness_foot_drop", "urgent", "leg", "right")
    ]


@pytest.mark.parametrize(
    "code", ["saddle_numbness", "bladder_bowel", "both_legs_weak", "progressive_weakness", "foot_drop"]
)
def test_no_single_safety_answer_raises_both_the_cauda_equina_and_the_weakness_flag(code):
    raised = {rule for rule, *_ in hits(**{code: True})}
    assert not {"cauda_equina", "progressive_weakness_foot_drop"} <= raised


def test_each_weakness_question_asks_one_thing():
    both, worsening = FORM.questions["both_legs_weak"].text, FORM.questions["progressive_weakness"].text
    assert "both" in both
    assert "worse" not in both
    assert "weaker" not in both
    assert "both" not in worsening


def test_a_dependent_answer_that_no_longer_applies_cannot_raise_a_flag():
    # "Which calf?" is only asked after "yes"; sent anyway with "no", it is dropped.
    assert hits(calf_swollen=False, calf_swollen_side="left") == []


def test_one_flag_per_injured_region_and_the_reason_quotes_the_answers():
    answers = FORM.clean(
        clean_intake_answers(
            recent_trauma=True,
            trauma_bone_pain=True,
            trauma_regions=[{"region": "knee", "side": "right"}, {"region": "ankle", "side": "left"}],
        )
    )
    found = screen(FORM, answers)
    assert [(h.region, h.side) for h in found] == [("knee", "right"), ("ankle", "left")]
    assert "fall, a blow or a motor vehicle accident? Yes" in found[0].reason


def test_the_default_intake_asks_every_item_of_the_seed_cause_lists():
    causes = {o.code for o in FORM.questions["causes"].options} - {"none"}
    assert len(causes) == 13
    assert {o.code for o in FORM.questions["local_factors"].options} - {"none"} == {
        "tissue_injury", "knee_joint_dysfunction", "sprains_strains", "varicose_veins", "overuse", "wear_and_tear",
        "arthritis",
    }  # fmt: skip
    assert len(FORM.questions["sciatica_symptoms"].options) == 6
    assert {o.code for o in FORM.questions["aggravating"].options} == {
        "running", "squatting", "jumping", "hills", "sitting", "standing", "walking", "stairs", "night",
    }  # fmt: skip
    assert {o.code for o in FORM.questions["spine_history"].options} - {"none"} == {
        "lumbar_herniated_disc", "disc_problems", "pinched_nerve", "spinal_stenosis", "piriformis_syndrome",
        "spondylolisthesis", "ankylosing_spondylitis",
    }  # fmt: skip
    assert {o.code for o in FORM.questions["spine_history"].options} >= {"lumbar_herniated_disc", "pinched_nerve"}
    assert "wear_and_tear" in {o.code for o in FORM.questions["local_factors"].options}
    assert set(FORM.questions["pain_regions"].regions) == {
        "lower_back", "hip_buttock", "thigh_front", "thigh_back", "thigh_inner", "thigh_outer", "knee", "shin",
        "calf", "ankle", "foot_heel",
    }  # fmt: skip


def test_fever_and_feeling_unwell_are_two_questions_and_only_fever_is_a_red_flag():
    fever, unwell = FORM.questions["fever"].text, FORM.questions["unwell"].text
    assert "unwell" not in fever
    assert "fever" not in unwell
    assert hits(fever=True) == [("systemic_red_flags", "urgent", "", "")]
    assert hits(unwell=True) == []
    assert hits(fever=True, unwell=True) == [("systemic_red_flags", "urgent", "", "")]


def test_numbness_or_tingling_in_the_ankle_foot_or_toes_is_asked_without_pain_travelling_from_the_back():
    question = FORM.questions["numbness_regions"]
    assert {"ankle", "foot_heel", "toes"} <= set(question.regions)
    answers = FORM.clean(
        clean_intake_answers(
            pain_radiates=False, numbness_tingling=True, numbness_regions=[{"region": "toes", "side": "left"}]
        )
    )
    assert answers["numbness_regions"] == [{"region": "toes", "side": "left"}]
    assert question.display(answers["numbness_regions"]) == "Toes (left)"
    assert "numbness_regions" not in FORM.clean(
        clean_intake_answers(numbness_tingling=False, numbness_regions=[{"region": "toes", "side": "left"}])
    )


def test_the_injection_site_side_is_asked_only_after_thigh_injections_and_is_required_then():
    with pytest.raises(ValidationError) as caught:
        FORM.clean(clean_intake_answers(causes=["thigh_injection"]))
    assert caught.value.message_dict == {"thigh_injection_side": ["Please answer this question."]}
    assert "thigh_injection_side" not in FORM.clean(clean_intake_answers(thigh_injection_side="left"))
