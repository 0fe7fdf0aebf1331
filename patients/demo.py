"""Twenty demo patients for the demo clinic, matched by name and birth date."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from clinic.demo import demo_clinic
from patients.models import Channel, Gender, Patient

NAMES = [
    ("Maya", "Singh", Gender.FEMALE), ("Liam", "Brown", Gender.MALE), ("Noah", "Tremblay", Gender.MALE),
    ("Emma", "Roy", Gender.FEMALE), ("Olivia", "Gagnon", Gender.FEMALE), ("Lucas", "Wilson", Gender.MALE),
    ("Sofia", "Martin", Gender.FEMALE), ("Ethan", "Lee", Gender.MALE), ("Zoe", "Taylor", Gender.FEMALE),
    ("Jack", "Campbell", Gender.MALE), ("Aria", "Anderson", Gender.FEMALE), ("Leo", "Côté", Gender.MALE),
    ("Chloe", "Nguyen", Gender.FEMALE), ("Owen", "Smith", Gender.MALE), ("Mila", "Johnson", Gender.FEMALE),
    ("Ryan", "Bouchard", Gender.MALE), ("Ivy", "Chen", Gender.FEMALE), ("Sam", "Patel", Gender.OTHER),
    ("Nora", "Kelly", Gender.FEMALE), ("Adam", "Morin", Gender.MALE),
]  # fmt: skip


@transaction.atomic
def seed_patients(stdout) -> int:
    clinic = demo_clinic()
    now = timezone.now()
    created = 0
    for index, (given, family, gender) in enumerate(NAMES):
        sms = index % 3 == 0
        _, was_created = Patient.objects.get_or_create(
            clinic=clinic,
            given_name=given,
            family_name=family,
            birth_date=dt.date(1960 + index * 2, 1 + index % 12, 1 + index),
            defaults={
                "gender": gender,
                "email": f"{given.lower()}.{family.lower().replace('ô', 'o').replace('é', 'e')}@example.com",
                "mobile_phone": f"+1416555{1000 + index:04d}",
                "preferred_channel": Channel.SMS if sms else Channel.EMAIL,
                "email_consent": True,
                "email_consent_at": now,
                "email_consent_source": "demo seed",
                "sms_consent": sms,
                "sms_consent_at": now if sms else None,
                "sms_consent_source": "demo seed" if sms else "",
                "city": "Toronto",
                "country": "CA",
            },
        )
        created += was_created
    stdout.write(f"patients: {Patient.objects.filter(clinic=clinic).count()} ({created} new)\n")
    return created
