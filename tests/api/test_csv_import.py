"""manage.py import_patients: column mapping, dry-run report, progress, all or nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from patients.models import Patient

pytestmark = pytest.mark.django_db

GOOD = """First Name,Surname,DOB,E-mail,Cell
Ada,Moss,1980-04-02,ada@example.com,+14165550101
Ben,Stone,02/03/1975,,
"""
ONE_BAD = """First Name,Surname,DOB,E-mail,Cell
Ada,Moss,1980-04-02,ada@example.com,+14165550101
,Stone,yesterday,not-an-email,
Cy,Lake,,,
"""
MAP = "given_name=First Name,family_name=Surname,birth_date=DOB,email=E-mail,mobile_phone=Cell"


def _run(tmp_path, text, *args):
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    call_command("import_patients", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_a_mapped_export_is_imported_with_a_progress_bar(tmp_path, clinic):
    out, err = _run(tmp_path, GOOD, "--clinic", clinic.slug, "--map", MAP, "--date-format", "DMY")
    assert "Imported 2 patient(s)" in out
    assert "2/2" in err
    ada = Patient.objects.get(clinic=clinic, given_name="Ada")
    assert str(ada.birth_date) == "1980-04-02"
    assert str(ada.mobile_phone) == "+14165550101"
    assert str(Patient.objects.get(given_name="Ben").birth_date) == "1975-03-02"


def test_dry_run_validates_and_writes_nothing(tmp_path, clinic):
    out, _ = _run(tmp_path, GOOD, "--clinic", clinic.slug, "--map", MAP, "--date-format", "DMY", "--dry-run")
    assert "2 row(s) valid" in out
    assert not Patient.objects.exists()


def test_one_bad_row_imports_nothing_and_reports_each_error_by_line(tmp_path, clinic):
    path = tmp_path / "export.csv"
    path.write_text(ONE_BAD, encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 row"):
        call_command("import_patients", str(path), "--clinic", clinic.slug, "--map", MAP, stderr=err)
    report = err.getvalue()
    assert "line 3: given_name" in report
    assert "line 3: birth_date" in report
    assert "line 3: email" in report
    assert not Patient.objects.exists()


def test_missing_columns_and_bad_mappings_are_refused(tmp_path, clinic):
    with pytest.raises(CommandError, match="Missing column"):
        _run(tmp_path, GOOD, "--clinic", clinic.slug)
    with pytest.raises(CommandError, match="Bad mapping"):
        _run(tmp_path, GOOD, "--clinic", clinic.slug, "--map", "shoe_size=Shoe")
    with pytest.raises(CommandError, match="No clinic"):
        _run(tmp_path, GOOD, "--clinic", "nowhere", "--map", MAP)
    assert not Patient.objects.exists()


def _rows(path) -> list[dict]:
    import csv

    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_exports_write_the_clinics_rows_only_and_are_audited(tmp_path, clinic, other_clinic):
    from clinic.models import AuditEvent
    from tests.factories import AppointmentFactory, PatientFactory

    mine = AppointmentFactory(clinic=clinic)
    PatientFactory(clinic=clinic, given_name="=HYPERLINK(1)")
    AppointmentFactory(clinic=other_clinic)
    for what, expected in (("patients", 2), ("appointments", 1)):
        path = tmp_path / f"{what}.csv"
        call_command("export_csv", what, "--clinic", clinic.slug, "--output", str(path), stderr=io.StringIO())
        assert len(_rows(path)) == expected
    assert _rows(tmp_path / "appointments.csv")[0]["id"] == str(mine.id)
    patient_rows = _rows(tmp_path / "patients.csv")
    assert "'=HYPERLINK(1)" in {row["given_name"] for row in patient_rows}
    assert AuditEvent.objects.filter(clinic=clinic, action="export").count() == 2


def test_an_exported_file_imports_back(tmp_path, clinic, other_clinic):
    from tests.factories import PatientFactory

    PatientFactory(clinic=clinic, given_name="Ada", family_name="Moss")
    path = tmp_path / "patients.csv"
    call_command("export_csv", "patients", "--clinic", clinic.slug, "--output", str(path), stderr=io.StringIO())
    call_command(
        "import_patients", str(path), "--clinic", other_clinic.slug, stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert Patient.objects.get(clinic=other_clinic).full_name == "Ada Moss"


def test_exported_times_are_the_clinics_wall_clock_with_its_offset(tmp_path, clinic):
    import datetime as dt

    from tests.factories import AppointmentFactory

    clinic.time_zone = "America/Toronto"
    clinic.save(update_fields=["time_zone"])
    AppointmentFactory(clinic=clinic, start=dt.datetime(2027, 1, 12, 15, 30, tzinfo=dt.UTC))
    path = tmp_path / "appointments.csv"
    call_command("export_csv", "appointments", "--clinic", clinic.slug, "--output", str(path), stderr=io.StringIO())
    row = _rows(path)[0]
    # 15:30 UTC is 10:30 in Toronto in January: the file says what the clinic's clock said.
    assert row["start"] == "2027-01-12T10:30:00-05:00"
    assert row["created_at"].endswith(("-05:00", "-04:00"))
