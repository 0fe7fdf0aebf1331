"""Screening rules of the upper-body intake: every row of DOMAIN.md's "Neck, shoulder, arm and
hand" table, hit and miss, and each rule linked to a contraindication on note entries.

The answers go through the form's own cleaning first, as a submission's do.
"""

from __future__ import annotations

import pytest

from intake.catalogs import read_definition
from intake.definition import QuestionType, parse_form
from intake.screening import screen
from sessions.safety import CONTRAINDICATIONS
from tests.intake.upper_body import UPPER_BODY, clean_upper_body_answers

FORM = parse_form(read_definition(UPPER_BODY))
RULES = {
    "cervical_myelopathy", "cervical_artery", "cardiac_arm_pain", "dvt_suspected", "progressive_weakness_arm",
    "fall_on_hand_possible_fracture", "neck_injury_possible_fracture", "joint_infection", "systemic_red_flags",
    "lymphoedema_arm", "upper_neck_instability", "anticoagulant_or_bleeding", "pregnancy", "implanted_device",
}  # fmt: skip


def hits(**overrides) -> list[tuple[str, str, str, str]]:
    answers = FORM.clean(clean_upper_body_answers(**overrides))
    return [(h.rule.code, h.rule.severity, h.region, h.side) for h in screen(FORM, answers)]


def test_there_is_a_rule_for_every_row_of_the_upper_body_table_and_nothing_fires_on_clean_answers():
    assert {rule.code for rule in FORM.rules} == RULES
    assert hits() == []


def test_every_rule_limits_treatment_through_the_contraindication_table():
    assert set(CONTRAINDICATIONS) >= RULES


POSITIVE = [
    ({"both_hands_clumsy": True}, ("cervical_myelopathy", "urgent", "neck", "")),
    ({"unsteady_walking": True}, ("cervical_myelopathy", "urgent", "neck", "")),
    ({"neck_shock": True}, ("cervical_myelopathy", "urgent", "neck", "")),
    ({"bladder_bowel": True}, ("cervical_myelopathy", "urgent", "neck", "")),
    ({"sudden_neck_pain": True}, ("cervical_artery", "urgent", "neck", "")),
    ({"unusual_headache": True}, ("cervical_artery", "urgent", "neck", "")),
    ({"head_symptoms": ["dizziness"]}, ("cervical_artery", "urgent", "neck", "")),
    ({"head_symptoms": ["double_vision"]}, ("cervical_artery", "urgent", "neck", "")),
    ({"head_symptoms": ["speech_swallow"]}, ("cervical_artery", "urgent", "neck", "")),
    ({"head_symptoms": ["drop_attacks"]}, ("cervical_artery", "urgent", "neck", "")),
    ({"head_symptoms": ["face_numbness"]}, ("cervical_artery", "urgent", "neck", "")),
    ({"exertion_arm_pain": True, "exertion_with": ["chest_pressure"]}, ("cardiac_arm_pain", "urgent", "", "")),
    ({"exertion_arm_pain": True, "exertion_with": ["breathless"]}, ("cardiac_arm_pain", "urgent", "", "")),
    ({"exertion_arm_pain": True, "exertion_with": ["sweating"]}, ("cardiac_arm_pain", "urgent", "", "")),
    ({"arm_swollen": True, "arm_swollen_side": "left", "arm_swollen_signs": ["bluish", "visible_veins"]},
     ("dvt_suspected", "urgent", "arm", "left")),
    ({"arm_swollen": True, "arm_swollen_side": "right"}, ("dvt_suspected", "urgent", "arm", "right")),
    ({"arm_weaker": True, "weakness_side": "right"}, ("progressive_weakness_arm", "urgent", "arm", "right")),
    ({"muscle_wasting": True}, ("progressive_weakness_arm", "urgent", "arm", "")),
    ({"fall_on_hand": True, "fall_hand_side": "left", "wrist_bone_pain": True},
     ("fall_on_hand_possible_fracture", "urgent", "wrist_hand", "left")),
    ({"neck_injury": True, "neck_bone_pain": True}, ("neck_injury_possible_fracture", "urgent", "neck", "")),
    ({"hot_swollen_joint": True, "fever": True},
     [("joint_infection", "urgent", "", ""), ("systemic_red_flags", "urgent", "", "")]),
    ({"fever": True}, ("systemic_red_flags", "urgent", "", "")),
    ({"weight_loss": True}, ("systemic_red_flags", "urgent", "", "")),
    ({"night_pain": True}, ("systemic_red_flags", "urgent", "", "")),
    ({"conditions": ["cancer_history"]}, ("systemic_red_flags", "urgent", "", "")),
    ({"drooping_eyelid": True}, ("systemic_red_flags", "urgent", "", "")),
    ({"conditions": ["lymph_nodes_removed"], "lymph_side": "left"}, ("lymphoedema_arm", "caution", "arm", "left")),
    ({"conditions": ["rheumatoid_arthritis"]}, ("upper_neck_instability", "caution", "neck", "")),
    ({"conditions": ["down_syndrome"]}, ("upper_neck_instability", "caution", "neck", "")),
    ({"anticoagulants": True}, ("anticoagulant_or_bleeding", "caution", "", "")),
    ({"conditions": ["bleeding_disorder"]}, ("anticoagulant_or_bleeding", "caution", "", "")),
    ({"conditions": ["pregnancy"]}, ("pregnancy", "caution", "", "")),
    ({"conditions": ["implanted_device"]}, ("implanted_device", "caution", "", "")),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "expected"), POSITIVE, ids=[str(i) for i in range(len(POSITIVE))])
def test_each_red_flag_answer_raises_its_flag_with_severity_region_and_side(overrides, expected):
    assert hits(**overrides) == (expected if isinstance(expected, list) else [expected])


NEGATIVE = [
    # One hand numb (carpal tunnel), not both; numbness and tingling reported by region.
    ("cervical_myelopathy", {"diagnoses": ["carpal_tunnel"], "symptoms": ["night_numb_hand"],
                             "numbness_tingling": True,
                             "numbness_regions": [{"region": "fingers_thumb", "side": "right"}]}),
    ("cervical_myelopathy", {"pain_radiates": True, "radiating_side": "left", "radiating_symptoms": ["tingling"]}),
    ("cervical_artery", {"head_symptoms": ["none"], "aggravating": ["turning_head"]}),
    ("cardiac_arm_pain", {"exertion_arm_pain": True, "exertion_with": ["none"]}),
    ("cardiac_arm_pain", {"exertion_arm_pain": False, "exertion_with": ["chest_pressure"]}),
    ("dvt_suspected", {"arm_swollen": False, "conditions": ["central_line"]}),
    ("progressive_weakness_arm", {"symptoms": ["weak_grip"], "pain_radiates": True, "radiating_side": "right",
                                  "radiating_symptoms": ["weakness"]}),
    ("fall_on_hand_possible_fracture", {"fall_on_hand": True, "fall_hand_side": "right", "wrist_bone_pain": False}),
    ("neck_injury_possible_fracture", {"neck_injury": True, "neck_bone_pain": False}),
    ("joint_infection", {"hot_swollen_joint": True, "fever": False}),
    ("systemic_red_flags", {"unwell": True, "aggravating": ["lying_on_it"]}),
    ("lymphoedema_arm", {"conditions": ["cancer_history"]}),
    ("upper_neck_instability", {"diagnoses": ["neck_disc"]}),
    ("anticoagulant_or_bleeding", {"medications": "Ibuprofen when needed"}),
    ("pregnancy", {"conditions": ["none"]}),
    ("implanted_device", {"conditions": ["none"]}),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "overrides"), NEGATIVE, ids=[rule for rule, _ in NEGATIVE])
def test_near_miss_answers_do_not_raise_the_flag(rule, overrides):
    assert rule not in {code for code, *_ in hits(**overrides)}


def test_every_rule_has_a_positive_and_a_negative_case():
    positive = set()
    for _, expected in POSITIVE:
        positive |= {e[0] for e in (expected if isinstance(expected, list) else [expected])}
    assert positive == RULES
    assert {rule for rule, _ in NEGATIVE} == RULES


def test_a_dependent_answer_that_no_longer_applies_cannot_raise_a_flag():
    assert hits(arm_swollen=False, arm_swollen_side="left") == []
    assert hits(exertion_arm_pain=False, exertion_with=["chest_pressure"]) == []


def test_each_safety_question_asks_one_thing():
    safety = FORM.section("safety")
    for question in safety.questions:
        if question.type == QuestionType.YES_NO:
            # "A or B" in one yes/no question is two questions (the issue-16 cauda equina mistake);
            # "sudden and severe" describes one pain.
            assert " or is " not in question.text, question.code
    assert "unwell" not in FORM.questions["fever"].text
    assert "headache" not in FORM.questions["sudden_neck_pain"].text


def test_the_body_map_has_arm_regions_and_sides_and_the_documents_arm_conditions_are_options():
    assert set(FORM.questions["pain_regions"].regions) == {
        "neck", "upper_back", "shoulder", "upper_arm", "elbow", "forearm", "wrist_hand", "fingers_thumb",
    }  # fmt: skip
    answers = FORM.clean(clean_upper_body_answers(pain_regions=[{"region": "wrist_hand", "side": "both"}]))
    assert FORM.questions["pain_regions"].display(answers["pain_regions"]) == "Wrist / hand (both sides (bilateral))"
    diagnoses = {o.code for o in FORM.questions["diagnoses"].options}
    assert {"carpal_tunnel", "tennis_elbow", "repetitive_strain", "pinched_nerve"} <= diagnoses


def test_the_reason_quotes_the_answers_that_raised_it():
    answers = FORM.clean(clean_upper_body_answers(exertion_arm_pain=True, exertion_with=["sweating"]))
    [hit] = screen(FORM, answers)
    assert "exert yourself" in hit.reason
    assert "Sweating" in hit.reason
