"""A complete upper-body intake answer set that raises no flag (override answers to test rules)."""

from __future__ import annotations

UPPER_BODY = "neck_shoulder_arm_hand_pain.yaml"
UPPER_BODY_CODE = "neck-shoulder-arm-hand-pain"


def clean_upper_body_answers(**overrides) -> dict:
    answers = {
        "pain_regions": [{"region": "elbow", "side": "right"}, {"region": "forearm", "side": "right"}],
        "pain_now": 4,
        "pain_worst": 7,
        "pain_best": 1,
        "pain_radiates": False,
        "numbness_tingling": False,
        "duration": "6_to_12_weeks",
        "onset_how": "gradual",
        "aggravating": ["gripping", "typing_mouse"],
        "causes": ["repetitive_work"],
        "diagnoses": ["tennis_elbow"],
        "symptoms": ["weak_grip"],
        "imaging": ["none"],
        "surgery": False,
        "anticoagulants": False,
        "conditions": ["none"],
        "both_hands_clumsy": False,
        "unsteady_walking": False,
        "neck_shock": False,
        "bladder_bowel": False,
        "sudden_neck_pain": False,
        "unusual_headache": False,
        "head_symptoms": ["none"],
        "exertion_arm_pain": False,
        "arm_swollen": False,
        "arm_weaker": False,
        "muscle_wasting": False,
        "fall_on_hand": False,
        "neck_injury": False,
        "hot_swollen_joint": False,
        "fever": False,
        "unwell": False,
        "weight_loss": False,
        "night_pain": False,
        "drooping_eyelid": False,
        "goals": "Lift my daughter without elbow pain.",
        "consent_to_treatment": True,
        "signature_name": "Omar Haddad",
    }
    answers.update(overrides)
    return {code: value for code, value in answers.items() if value is not None}
