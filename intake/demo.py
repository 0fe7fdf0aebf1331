"""Demo intake: a few patients with submitted intakes (two with flags), one upper-body intake and
one open link with a draft."""

from __future__ import annotations

from django.db import transaction

from clinic.demo import demo_clinic
from intake.models import IntakeChoice, IntakeLink, IntakeSubmission
from intake.services import intake_draft_save, intake_link_create, intake_submit, questionnaire_current
from patients.models import Patient

BASE = {
    "pain_regions": [{"region": "knee", "side": "left"}],
    "pain_now": 4, "pain_worst": 7, "pain_radiates": False, "numbness_tingling": False,
    "duration": "6_to_12_weeks", "onset_how": "gradual",
    "aggravating": ["running", "stairs"], "causes": ["overdoing_sport"], "spine_history": ["none"],
    "imaging": ["none"], "surgery": False, "anticoagulants": False, "conditions": ["none"],
    "calf_swollen": False, "saddle_numbness": False, "bladder_bowel": False, "both_legs_weak": False,
    "progressive_weakness": False, "foot_drop": False, "recent_trauma": False, "fever": False,
    "unwell": False, "weight_loss": False, "night_pain": False, "consent_to_treatment": True,
}  # fmt: skip

DEMO_INTAKES = [
    # (given, family, answers beyond BASE)
    ("Maya", "Singh", {
        "pain_regions": [{"region": "calf", "side": "right"}, {"region": "knee", "side": "right"}],
        "calf_swollen": True, "calf_swollen_side": "right", "conditions": ["varicose_veins"],
        "varicose_regions": [{"region": "calf", "side": "right"}], "goals": "Walk the dog without calf pain.",
    }),
    ("Liam", "Brown", {
        "pain_regions": [{"region": "lower_back", "side": "both"}, {"region": "thigh_back", "side": "left"}],
        "pain_radiates": True, "sciatica_side": "left", "sciatica_symptoms": ["numbness", "tingling"],
        "spine_history": ["lumbar_herniated_disc"], "anticoagulants": True, "goals": "Sit through a work day.",
    }),
    ("Noah", "Tremblay", {"goals": "Get back to soccer."}),
]  # fmt: skip


# The upper-body form: tennis elbow from repetitive work, after breast cancer surgery on the left.
UPPER_BODY_INTAKE = ("Olivia", "Gagnon", {
    "pain_regions": [{"region": "elbow", "side": "right"}, {"region": "forearm", "side": "right"}],
    "pain_now": 5, "pain_worst": 7, "pain_radiates": False, "numbness_tingling": False,
    "duration": "over_3_months", "onset_how": "gradual", "aggravating": ["gripping", "typing_mouse"],
    "causes": ["repetitive_work", "desk_posture"], "diagnoses": ["tennis_elbow"], "symptoms": ["weak_grip"],
    "imaging": ["none"], "surgery": True, "surgery_details": "Left breast and armpit lymph nodes, 2021.",
    "anticoagulants": False, "conditions": ["cancer_history", "lymph_nodes_removed"], "lymph_side": "left",
    "both_hands_clumsy": False, "unwell": False, "unsteady_walking": False, "neck_shock": False,
    "bladder_bowel": False, "sudden_neck_pain": False, "unusual_headache": False, "head_symptoms": ["none"],
    "exertion_arm_pain": False,
    "arm_swollen": False, "arm_weaker": False, "muscle_wasting": False, "fall_on_hand": False,
    "neck_injury": False, "hot_swollen_joint": False, "fever": False, "weight_loss": False,
    "night_pain": False, "drooping_eyelid": False, "goals": "Carry my shopping and garden again.",
    "consent_to_treatment": True,
})  # fmt: skip


@transaction.atomic
def seed_intake(stdout) -> int:
    clinic = demo_clinic()
    created = 0
    questionnaire = questionnaire_current(clinic=clinic)
    for given, family, extra in DEMO_INTAKES:
        patient = Patient.objects.filter(clinic=clinic, given_name=given, family_name=family).first()
        if patient is None or IntakeSubmission.objects.filter(patient=patient).exists():
            continue
        link = intake_link_create(patient=patient, questionnaire=questionnaire)
        intake_submit(link=link, answers={**BASE, "signature_name": patient.full_name, **extra})
        created += 1
    given, family, answers = UPPER_BODY_INTAKE
    patient = Patient.objects.filter(clinic=clinic, given_name=given, family_name=family).first()
    if patient is not None and not IntakeSubmission.objects.filter(patient=patient).exists():
        upper = questionnaire_current(clinic=clinic, code=IntakeChoice.UPPER)
        link = intake_link_create(patient=patient, questionnaire=upper)
        intake_submit(link=link, answers={**answers, "signature_name": patient.full_name})
        created += 1
    waiting = Patient.objects.filter(clinic=clinic, given_name="Emma", family_name="Roy").first()
    if waiting and not IntakeLink.objects.filter(patient=waiting).exists():
        link = intake_link_create(patient=waiting, questionnaire=questionnaire)
        intake_draft_save(
            link=link, section_code="pain", complete=True,
            raw={"pain_regions": [{"region": "foot_heel", "side": "left"}], "pain_now": 3, "pain_worst": 6,
                 "pain_radiates": False, "numbness_tingling": False},
        )  # fmt: skip
        stdout.write(f"intake: open link with a draft for {waiting.full_name}: {link.url}\n")
    stdout.write(f"intake: {IntakeSubmission.objects.filter(clinic=clinic).count()} submissions ({created} new)\n")
    return created
