"""Contraindication rules: each intake flag warns or blocks the entries it concerns,
limited to the flag's region and side; a warning is overridden by a written reason."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from intake.models import FlagSeverity
from sessions.models import AcupunctureEntry, ArtEntry, MassageEntry
from sessions.safety import CONTRAINDICATIONS
from sessions.services import entry_add
from tests.factories import PatientFlagFactory
from tests.sessions.conftest import art, home_care, massage, needle

pytestmark = pytest.mark.django_db

URGENT, CAUTION = FlagSeverity.URGENT, FlagSeverity.CAUTION

# rule_code, severity, flag region, flag side, entry builder, expected effect
CASES = [
    ("dvt_suspected", URGENT, "leg", "left", lambda s: massage(s, region="calf", side="left"), "block"),
    ("dvt_suspected", URGENT, "leg", "left", lambda s: art(s, structure="hamstrings", side="left"), "block"),
    ("varicose_veins", CAUTION, "lower_leg", "right", lambda s: massage(s, side="right", pressure=4), "warn"),
    ("circulation_or_diabetic_sensation", CAUTION, "leg", "", lambda s: needle(s, point="LR3"), "warn"),
    ("circulation_or_diabetic_sensation", CAUTION, "leg", "", lambda s: massage(s, pressure=5), "warn"),
    ("cauda_equina", URGENT, "", "", lambda s: art(s, structure="piriformis"), "block"),
    ("progressive_weakness_foot_drop", URGENT, "", "", lambda s: needle(s), "block"),
    ("recent_trauma_possible_fracture", URGENT, "ankle_foot", "right", lambda s: needle(s, "KI3", "right"), "block"),
    ("systemic_red_flags", URGENT, "", "", lambda s: massage(s, region="lower_back", side=""), "block"),
    ("anticoagulant_or_bleeding", CAUTION, "", "", lambda s: needle(s, point="GB34"), "warn"),
    ("anticoagulant_or_bleeding", CAUTION, "", "", lambda s: massage(s, pressure=4), "warn"),
    ("pregnancy", CAUTION, "", "", lambda s: needle(s, point="SP6"), "warn"),
    ("pregnancy", CAUTION, "", "", lambda s: needle(s, point="GV4", side=""), "warn"),
    ("implanted_device", CAUTION, "", "", lambda s: needle(s, electro_stimulation=True), "block"),
    ("thigh_injection_history", CAUTION, "thigh", "left", lambda s: massage(s, region="thigh_front"), "warn"),
    # The upper-body intake's flags.
    ("dvt_suspected", URGENT, "arm", "right", lambda s: massage(s, region="forearm", side="right"), "block"),
    ("dvt_suspected", URGENT, "arm", "right", lambda s: art(s, structure="wrist_flexors", side="right"), "block"),
    ("cervical_myelopathy", URGENT, "neck", "", lambda s: massage(s, region="neck", side="", pressure=1), "block"),
    ("cervical_artery", URGENT, "neck", "", lambda s: massage(s, region="neck", side="both"), "block"),
    ("cardiac_arm_pain", URGENT, "", "", lambda s: massage(s, region="calf"), "block"),
    ("progressive_weakness_arm", URGENT, "arm", "left", lambda s: needle(s, point="LI4", side="left"), "block"),
    (
        "fall_on_hand_possible_fracture",
        URGENT,
        "wrist_hand",
        "left",
        lambda s: art(s, structure="median_nerve", side="left"),
        "block",
    ),
    ("neck_injury_possible_fracture", URGENT, "neck", "", lambda s: massage(s, region="neck", side=""), "block"),
    ("joint_infection", URGENT, "", "", lambda s: needle(s, point="LI11"), "block"),
    ("lymphoedema_arm", CAUTION, "arm", "left", lambda s: needle(s, point="PC6", side="left"), "warn"),
    ("lymphoedema_arm", CAUTION, "arm", "left", lambda s: massage(s, region="upper_arm", pressure=4), "warn"),
    ("upper_neck_instability", CAUTION, "neck", "", lambda s: massage(s, region="neck", side="", pressure=4), "warn"),
]

# The same flags do not concern these entries.
NOT_CAUGHT = [
    ("dvt_suspected", URGENT, "leg", "left", lambda s: massage(s, region="calf", side="right")),
    ("dvt_suspected", URGENT, "leg", "left", lambda s: massage(s, region="lower_back", side="")),
    ("dvt_suspected", URGENT, "leg", "left", lambda s: needle(s, point="ST36", side="left")),
    ("varicose_veins", CAUTION, "lower_leg", "right", lambda s: massage(s, side="right", pressure=2)),
    ("anticoagulant_or_bleeding", CAUTION, "", "", lambda s: massage(s, pressure=2)),
    ("pregnancy", CAUTION, "", "", lambda s: needle(s, point="ST36")),
    ("implanted_device", CAUTION, "", "", lambda s: needle(s, electro_stimulation=False)),
    ("thigh_injection_history", CAUTION, "thigh", "left", lambda s: massage(s, region="calf")),
    ("recent_trauma_possible_fracture", URGENT, "ankle_foot", "right", lambda s: needle(s, "KI3", "left")),
    ("cauda_equina", URGENT, "", "", lambda s: home_care(s)),
    # Upper body: the other arm, the legs, light work where only deep work is a caution.
    ("dvt_suspected", URGENT, "arm", "right", lambda s: massage(s, region="forearm", side="left")),
    ("dvt_suspected", URGENT, "arm", "right", lambda s: massage(s, region="calf", side="right")),
    ("cervical_myelopathy", URGENT, "neck", "", lambda s: massage(s, region="calf")),
    ("cervical_artery", URGENT, "neck", "", lambda s: art(s, structure="wrist_extensors")),
    ("progressive_weakness_arm", URGENT, "arm", "left", lambda s: needle(s, point="LI4", side="right")),
    ("fall_on_hand_possible_fracture", URGENT, "wrist_hand", "left", lambda s: massage(s, region="elbow")),
    ("neck_injury_possible_fracture", URGENT, "neck", "", lambda s: massage(s, region="lower_back", side="")),
    ("lymphoedema_arm", CAUTION, "arm", "left", lambda s: massage(s, region="forearm", pressure=2)),
    ("lymphoedema_arm", CAUTION, "arm", "left", lambda s: needle(s, point="PC6", side="right")),
    ("upper_neck_instability", CAUTION, "neck", "", lambda s: massage(s, region="neck", side="", pressure=2)),
]


def flag(session, rule_code, severity, region="", side="", **extra):
    return PatientFlagFactory(
        clinic=session.clinic, patient=session.patient, rule_code=rule_code, severity=severity, region=region,
        side=side, **extra,
    )  # fmt: skip


def entry_count(session) -> int:
    return sum(m.objects.filter(session=session).count() for m in (ArtEntry, MassageEntry, AcupunctureEntry))


def test_every_rule_of_the_table_is_exercised():
    assert {case[0] for case in CASES} == set(CONTRAINDICATIONS)


@pytest.mark.parametrize(("rule_code", "severity", "region", "side", "build", "effect"), CASES)
def test_a_flag_warns_or_blocks_the_entries_it_concerns(
    session, therapist, rule_code, severity, region, side, build, effect
):
    flag(session, rule_code, severity, region, side)
    with pytest.raises(ValidationError) as caught:
        entry_add(entry=build(session), actor=therapist)
    errors = caught.value.message_dict
    if effect == "block":
        assert errors["__all__"][0].startswith("Blocked:")
    else:
        assert errors["override_reason"][0].startswith("Warning:")
    assert entry_count(session) == 0


@pytest.mark.parametrize(("rule_code", "severity", "region", "side", "build", "effect"), CASES)
def test_a_written_reason_overrides_warnings_but_never_blocks(
    session, therapist, rule_code, severity, region, side, build, effect
):
    flag(session, rule_code, severity, region, side)
    entry = build(session)
    entry.override_reason = "Discussed with the patient's physician; light work only."
    if effect == "block":
        with pytest.raises(ValidationError, match="Blocked"):
            entry_add(entry=entry, actor=therapist)
        assert entry_count(session) == 0
    else:
        saved = entry_add(entry=entry, actor=therapist)
        saved.refresh_from_db()
        assert saved.override_reason.startswith("Discussed with")
        assert saved.overridden_rules == [rule_code]


@pytest.mark.parametrize(("rule_code", "severity", "region", "side", "build"), NOT_CAUGHT)
def test_a_flag_leaves_other_regions_sides_and_techniques_alone(
    session, therapist, rule_code, severity, region, side, build
):
    flag(session, rule_code, severity, region, side)
    saved = entry_add(entry=build(session), actor=therapist)
    assert saved.pk is not None
    assert saved.overridden_rules == []


def test_a_cleared_flag_no_longer_blocks(session, therapist, owner):
    from django.utils import timezone

    flag(session, "dvt_suspected", URGENT, "leg", "left", cleared_at=timezone.now(), cleared_by=owner)
    assert entry_add(entry=massage(session), actor=therapist).pk is not None


def test_an_information_flag_neither_warns_nor_blocks(session, therapist):
    flag(session, "pregnancy", FlagSeverity.INFO)
    assert entry_add(entry=needle(session, point="SP6"), actor=therapist).pk is not None


def test_an_urgent_flag_of_a_caution_rule_blocks(session, therapist):
    flag(session, "anticoagulant_or_bleeding", URGENT)
    with pytest.raises(ValidationError, match="Blocked"):
        entry_add(entry=massage(session, pressure=5), actor=therapist)


def test_a_flag_on_both_legs_covers_either_side(session, therapist):
    flag(session, "dvt_suspected", URGENT, "leg", "both")
    with pytest.raises(ValidationError, match="deep vein thrombosis"):
        entry_add(entry=massage(session, side="right"), actor=therapist)


def test_another_patients_flag_does_not_count(session, therapist):
    PatientFlagFactory(clinic=session.clinic, rule_code="dvt_suspected", severity=URGENT, region="leg")
    assert entry_add(entry=massage(session), actor=therapist).pk is not None
