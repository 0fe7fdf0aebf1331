"""Demo intake: a few patients with submitted intakes (two with flags) and one open link with a draft."""

from __future__ import annotations

from django.db import transaction

from clinic.demo import demo_clinic
from intake.models import IntakeLink, IntakeSubmission
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
