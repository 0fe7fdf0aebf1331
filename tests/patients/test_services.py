"""Merging duplicates, and patient search staying index-backed at 100k patients."""

from __future__ import annotations

import pytest
from django.db import connection

from clinic.models import AuditEvent
from intake.services import intake_submit
from patients.models import Patient
from patients.services import patient_merge
from tests.factories import AppointmentFactory, PatientFactory, clean_intake_answers, intake_link

pytestmark = pytest.mark.django_db


def test_merge_moves_intake_flags_and_appointments_and_archives_the_duplicate(clinic, owner):
    keep = PatientFactory(clinic=clinic, email="", email_consent=False, city="")
    duplicate = PatientFactory(clinic=clinic, email="maya@example.com", city="Toronto")
    submission = intake_submit(link=intake_link(duplicate), answers=clean_intake_answers(conditions=["pregnancy"]))
    appointment = AppointmentFactory(clinic=clinic, patient=duplicate)
    patient_merge(source=duplicate, target=keep, by=owner)
    submission.refresh_from_db()
    appointment.refresh_from_db()
    duplicate.refresh_from_db()
    keep.refresh_from_db()
    assert submission.patient == keep
    assert appointment.patient == keep
    assert keep.flags.get().rule_code == "pregnancy"
    assert (keep.email, keep.city, keep.email_consent) == ("maya@example.com", "Toronto", True)
    assert duplicate.is_archived
    assert duplicate.merged_into == keep
    assert list(Patient.objects.search("maya@example")) == [keep]
    assert AuditEvent.objects.get(object_id=str(keep.pk)).extra == {"merged_from": duplicate.pk}


def test_patients_of_two_clinics_cannot_be_merged(clinic, other_clinic):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        patient_merge(source=PatientFactory(clinic=clinic), target=PatientFactory(clinic=other_clinic))


@pytest.mark.slow  # 100,000 rows
def test_search_on_100k_patients_uses_the_trigram_index_not_a_table_scan(clinic):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO patients_patient (
                clinic_id, given_name, family_name, preferred_name, gender, gender_text, email, mobile_phone,
                address_line1, address_line2, city, region, postal_code, country, emergency_contact_name,
                emergency_contact_phone, preferred_channel, email_consent, sms_consent, email_consent_source,
                sms_consent_source, is_archived, created_at, updated_at)
            SELECT %s, 'Given' || n, 'Family' || n, '', 'unknown', '', 'p' || n || '@example.com',
                   '+1416' || lpad(n::text, 7, '0'), '', '', '', '', '', '', '', '', 'email', false, false, '', '',
                   false, now(), now()
            FROM generate_series(1, 100000) AS n
            """,
            [clinic.pk],
        )
        cursor.execute("ANALYZE patients_patient")
        query = Patient.objects.filter(clinic=clinic).search("family4242")
        sql, params = query.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "patient_search_trgm" in plan, plan
    assert "Seq Scan on patients_patient" not in plan, plan
    assert query.count() == 11  # family4242 and family42420..family42429
