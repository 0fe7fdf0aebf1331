"""CSV dates are never guessed: ISO 8601 always, any other spelling only in the file's given format.

`03/04/1980` is 3 April in a DMY file and 4 March in an MDY one; with no format given it is a
row error naming the column and how to give the format (`--date-format`, or `date_format` in
the API). A date that happens to be unambiguous (`25/12/1980`) is refused too without a format:
a file is read by one rule, so a mixed file can't be half DMY and half MDY.
"""

from __future__ import annotations

import datetime as dt
import io
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from clinic import csv_import
from clinic.models import ImportJob
from patients.models import Patient
from patients.tasks import run_import_job
from sessions.models import Appointment
from tests.factories import PatientFactory, PractitionerFactory, ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("raw", "date_format", "expected"),
    [
        ("1980-04-03", "", dt.date(1980, 4, 3)), ("1980-04-03", "MDY", dt.date(1980, 4, 3)),
        ("03/04/1980", "DMY", dt.date(1980, 4, 3)), ("03/04/1980", "MDY", dt.date(1980, 3, 4)),
        ("03-04-1980", "dmy", dt.date(1980, 4, 3)), ("03.04.1980", "DMY", dt.date(1980, 4, 3)),
        ("25/12/1980", "DMY", dt.date(1980, 12, 25)), ("12/25/1980", "MDY", dt.date(1980, 12, 25)),
        ("1980/12/25", "YMD", dt.date(1980, 12, 25)), ("25.12.1980", "%d.%m.%Y", dt.date(1980, 12, 25)),
        ("03/04/80", "%d/%m/%y", dt.date(1980, 4, 3)),
    ],
)  # fmt: skip
def test_a_date_is_read_as_iso_or_in_the_given_format(raw, date_format, expected):
    assert csv_import.csv_date(raw, date_format=csv_import.date_format_parse(date_format), column="DOB") == expected


@pytest.mark.parametrize(
    ("raw", "date_format", "says"),
    [
        ("03/04/1980", "", "--date-format"), ("12/25/1980", "", "--date-format"),
        ("25/12/1980", "", "no date format was given"), ("12/25/1980", "DMY", "format DMY"),
        ("25/12/1980", "MDY", "format MDY"), ("1980-02-30", "", "not a date"), ("yesterday", "DMY", "format DMY"),
    ],
)  # fmt: skip
def test_a_date_not_iso_and_not_in_the_given_format_is_an_error_naming_the_column(raw, date_format, says):
    with pytest.raises(ValidationError) as raised:
        csv_import.csv_date(raw, date_format=csv_import.date_format_parse(date_format), column="DOB")
    assert "'DOB'" in raised.value.messages[0]
    assert says in raised.value.messages[0]


@pytest.mark.parametrize("spec", ["DDMMYYYY", "%H:%M", "%d/%Y", "European", "%d/%m/%Q"])
def test_an_unknown_date_format_is_refused(spec):
    with pytest.raises(ValueError, match="Unknown date format"):
        csv_import.date_format_parse(spec)


# --- import_patients ------------------------------------------------------------------

AMBIGUOUS = "First Name,Surname,DOB\nAda,Moss,03/04/1980\nBen,Stone,1975-03-02\n"
PATIENT_MAP = "given_name=First Name,family_name=Surname,birth_date=DOB"


def _import_patients(tmp_path, text, *args):
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    call_command("import_patients", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_an_ambiguous_birth_date_without_a_date_format_is_a_row_error_and_nothing_is_imported(tmp_path, clinic):
    with pytest.raises(CommandError, match="nothing was imported"):
        _import_patients(tmp_path, AMBIGUOUS, "--clinic", clinic.slug, "--map", PATIENT_MAP)
    assert not Patient.objects.exists()


def test_the_row_error_names_the_line_column_and_the_date_format_option(tmp_path, clinic):
    path = tmp_path / "export.csv"
    path.write_text(AMBIGUOUS, encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "import_patients", str(path), "--clinic", clinic.slug, "--map", PATIENT_MAP, stdout=StringIO(), stderr=err
        )
    assert "line 2: birth_date: Column 'DOB': '03/04/1980'" in err.getvalue()
    assert "--date-format DMY or MDY" in err.getvalue()


@pytest.mark.parametrize(
    ("date_format", "ada"), [("DMY", "1980-04-03"), ("MDY", "1980-03-04"), ("%d/%m/%Y", "1980-04-03")]
)
def test_the_date_format_decides_the_day_month_order(tmp_path, clinic, date_format, ada):
    out, _ = _import_patients(
        tmp_path, AMBIGUOUS, "--clinic", clinic.slug, "--map", PATIENT_MAP, "--date-format", date_format
    )
    assert "Imported 2 patient(s)" in out
    assert str(Patient.objects.get(given_name="Ada").birth_date) == ada
    assert str(Patient.objects.get(given_name="Ben").birth_date) == "1975-03-02"  # ISO, whatever the format


def test_an_unknown_date_format_option_is_refused_before_reading_rows(tmp_path, clinic):
    with pytest.raises(CommandError, match="Unknown date format 'DD/MM'"):
        _import_patients(tmp_path, AMBIGUOUS, "--clinic", clinic.slug, "--map", PATIENT_MAP, "--date-format", "DD/MM")
    assert not Patient.objects.exists()


# --- import_appointments --------------------------------------------------------------


@pytest.fixture
def booking_world(clinic):
    practitioner = PractitionerFactory(clinic=clinic, display_name="Ava Thompson")
    service = ServiceFactory(
        clinic=clinic, name="Massage 60", duration_minutes=60, buffer_minutes=0, requires_room=False
    )
    practitioner.services.add(service)
    PatientFactory(clinic=clinic, email="p0@example.com")


def _import_appointments(tmp_path, clinic, owner, *args):
    path = tmp_path / "appointments.csv"
    path.write_text("patient,practitioner,service,start\np0@example.com,Ava Thompson,Massage 60,03/04/2027 09:00\n")
    err = StringIO()
    call_command(
        "import_appointments", str(path), "--clinic", clinic.slug, "--by", owner.username, *args,
        stdout=StringIO(), stderr=err,
    )  # fmt: skip
    return err.getvalue()


def test_an_appointment_start_that_is_not_iso_needs_the_date_format(tmp_path, clinic, owner, booking_world):
    with pytest.raises(CommandError, match="nothing was imported"):
        _import_appointments(tmp_path, clinic, owner)
    assert not Appointment.objects.exists()


@pytest.mark.parametrize(("date_format", "day"), [("DMY", dt.date(2027, 4, 3)), ("MDY", dt.date(2027, 3, 4))])
def test_an_appointment_start_is_read_in_the_given_format_in_the_clinics_zone(
    tmp_path, clinic, owner, booking_world, date_format, day
):
    _import_appointments(tmp_path, clinic, owner, "--date-format", date_format)
    start = Appointment.objects.get().start.astimezone(clinic.tz)
    assert (start.date(), start.hour, start.minute) == (day, 9, 0)


# --- API import jobs ------------------------------------------------------------------

MAPPING = {"given_name": "First Name", "family_name": "Surname", "birth_date": "DOB"}


def _submit(client, **extra):
    return client.post("/api/v1/patient-imports/", {"csv": AMBIGUOUS, "mapping": MAPPING, **extra}, format="json")


def test_an_import_job_without_a_date_format_fails_on_the_ambiguous_row(owner_api, clinic):
    response = _submit(owner_api)
    assert response.status_code == 202, response.content
    run_import_job(response.json()["id"])
    job = owner_api.get(f"/api/v1/patient-imports/{response.json()['id']}/").json()
    assert job["status"] == "failed"
    assert list(job["errors"]) == ["2"]
    assert "date_format" in job["errors"]["2"]["birth_date"][0]
    assert not Patient.objects.exists()


@pytest.mark.parametrize(("date_format", "ada"), [("DMY", "1980-04-03"), ("MDY", "1980-03-04")])
def test_an_import_job_reads_dates_in_its_date_format(owner_api, clinic, date_format, ada):
    response = _submit(owner_api, date_format=date_format)
    assert response.status_code == 202, response.content
    assert response.json()["date_format"] == date_format
    run_import_job(response.json()["id"])
    assert ImportJob.objects.get().status == "succeeded"
    assert str(Patient.objects.get(given_name="Ada").birth_date) == ada


def test_an_unknown_date_format_is_a_field_error_and_no_job(owner_api, clinic):
    response = _submit(owner_api, date_format="DD-MM")
    assert response.status_code == 400, response.content
    assert "Unknown date format" in response.json()["errors"]["date_format"][0]
    assert not ImportJob.objects.exists()
