"""The demo clinic has intakes on both forms, with the flags their answers raise."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from intake.models import IntakeChoice, IntakeSubmission
from patients.models import Patient

pytestmark = pytest.mark.django_db


def test_the_demo_has_an_upper_body_intake_with_its_arm_caution():
    call_command("load_catalogs", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())
    olivia = Patient.objects.get(given_name="Olivia", family_name="Gagnon")
    submission = IntakeSubmission.objects.get(patient=olivia)
    assert submission.questionnaire.code == IntakeChoice.UPPER
    assert {(f.rule_code, f.region, f.side) for f in olivia.flags.all()} == {
        ("lymphoedema_arm", "arm", "left"),
        ("systemic_red_flags", "", ""),
    }
    codes = set(IntakeSubmission.objects.values_list("questionnaire__code", flat=True))
    assert codes == {IntakeChoice.LEG, IntakeChoice.UPPER}
