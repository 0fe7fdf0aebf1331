"""Importing appointments from another system's CSV: all rows or none, clashes by line."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from patients.csv_io import ImportRefused
from sessions.csv_io import appointments_import_csv, parse_appointment_mapping
from sessions.models import Appointment
from tests.factories import PatientFactory, PractitionerFactory, ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clinic):
    practitioner = PractitionerFactory(clinic=clinic, display_name="Ava Thompson")
    service = ServiceFactory(
        clinic=clinic, name="Massage 60", duration_minutes=60, buffer_minutes=0, requires_room=False
    )
    practitioner.services.add(service)
    patients = [PatientFactory(clinic=clinic, email=f"p{i}@example.com") for i in range(3)]
    return practitioner, service, patients


def _csv(*rows: str, header: str = "patient,practitioner,service,start") -> StringIO:
    return StringIO("\n".join([header, *rows]) + "\n", newline="")


def test_every_row_is_booked_in_the_clinics_zone(clinic, world, owner):
    practitioner, service, patients = world
    lines = _csv(
        "p0@example.com,Ava Thompson,Massage 60,2027-03-01 09:00",
        f"{patients[1].id},{practitioner.id},{service.id},2027-03-01T10:00:00-05:00",
    )
    report = appointments_import_csv(clinic=clinic, lines=lines, imported_by=owner)
    assert report.created == 2
    starts = sorted(a.start for a in Appointment.objects.filter(clinic=clinic))
    assert starts == [dt.datetime(2027, 3, 1, 14, tzinfo=dt.UTC), dt.datetime(2027, 3, 1, 15, tzinfo=dt.UTC)]
    assert all(a.booked_by == owner for a in Appointment.objects.all())


def test_dry_run_reports_row_errors_by_line_and_writes_nothing(clinic, world, owner):
    lines = _csv(
        "p0@example.com,Ava Thompson,Massage 60,2027-03-01 09:00",
        "nobody@example.com,Ava Thompson,Massage 60,2027-03-01 10:00",
        "p2@example.com,Ava Thompson,Massage 60,next tuesday",
    )
    with pytest.raises(ImportRefused) as raised:
        appointments_import_csv(clinic=clinic, lines=lines, dry_run=True, imported_by=owner)
    errors = raised.value.report.errors
    assert set(errors) == {3, 4}
    assert "patient" in errors[3]
    assert "start" in errors[4]
    assert not Appointment.objects.exists()


def test_a_double_booking_in_the_file_rolls_back_every_row(clinic, world, owner):
    lines = _csv(
        "p0@example.com,Ava Thompson,Massage 60,2027-03-01 09:00",
        "p1@example.com,Ava Thompson,Massage 60,2027-03-01 11:00",
        "p2@example.com,Ava Thompson,Massage 60,2027-03-01 09:30",
    )
    with pytest.raises(ImportRefused) as raised:
        appointments_import_csv(clinic=clinic, lines=lines, imported_by=owner)
    assert list(raised.value.report.errors) == [4]
    assert "already booked" in raised.value.report.errors[4]["start"][0]
    assert not Appointment.objects.exists()


def test_another_clinics_patient_is_not_found(clinic, other_clinic, world, owner):
    PatientFactory(clinic=other_clinic, email="elsewhere@example.com")
    with pytest.raises(ImportRefused) as raised:
        appointments_import_csv(
            clinic=clinic,
            lines=_csv("elsewhere@example.com,Ava Thompson,Massage 60,2027-03-01 09:00"),
            imported_by=owner,
        )
    assert "patient" in raised.value.report.errors[2]


def test_column_mapping_and_the_command(clinic, world, owner, tmp_path: Path):
    path = tmp_path / "export.csv"
    path.write_text("Client Email,Therapist,Treatment,When\np0@example.com,Ava Thompson,Massage 60,2027-03-02 09:00\n")
    mapping = "patient=Client Email,practitioner=Therapist,service=Treatment,start=When"
    assert parse_appointment_mapping(mapping)["start"] == "When"
    out = StringIO()
    args = ["import_appointments", str(path), "--clinic", clinic.slug, "--map", mapping, "--by", owner.username]
    call_command(*args, "--dry-run", stdout=out, stderr=StringIO())
    assert "1 row(s) valid" in out.getvalue()
    assert not Appointment.objects.exists()
    call_command(*args, stdout=out, stderr=StringIO())
    assert Appointment.objects.count() == 1
    with pytest.raises(CommandError, match="Missing column"):
        call_command("import_appointments", str(path), "--clinic", clinic.slug, "--by", owner.username, stdout=out,
                     stderr=StringIO())  # fmt: skip
