"""The demo clinic for `make run`: idempotent, matched by natural keys."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from clinic.models import Clinic, Location, Practitioner, Room, Service, User
from clinic.security.roles import Role
from clinic.services import membership_set, practitioner_create

# The catalog model the services point at, through the foreign key (the catalogs app sits above
# the clinic core, so the core names it only by its "treatments.Modality" string).
Modality = Service._meta.get_field("modality").related_model

DEMO_SLUG = "demo"
DEMO_PASSWORD = "demo-clinic-2026"  # noqa: S105 - printed by seed_demo, which refuses to run in production

STAFF = [
    # username, first, last, role, practitioner display name, modality codes
    ("owner", "Olivia", "Owens", Role.OWNER, None, []),
    ("frontdesk", "Rita", "Reyes", Role.RECEPTIONIST, None, []),
    ("ava", "Ava", "Thompson", Role.THERAPIST, "Ava Thompson, RMT (ART)", ["art", "stretching"]),
    ("ben", "Ben", "Okafor", Role.THERAPIST, "Ben Okafor, RMT", ["massage", "stretching"]),
    ("chen", "Chen", "Li", Role.THERAPIST, "Dr. Chen Li, R.Ac", ["acupuncture"]),
]

SERVICES = [
    # name, modality, minutes, buffer, price
    ("Active Release Technique", "art", 30, 10, Decimal("85.00")),
    ("Remedial massage 60", "massage", 60, 15, Decimal("120.00")),
    ("Acupuncture", "acupuncture", 45, 15, Decimal("95.00")),
]


def demo_clinic() -> Clinic | None:
    return Clinic.objects.filter(slug=DEMO_SLUG).first()


@transaction.atomic
def seed_clinic(stdout) -> Clinic:
    clinic, _ = Clinic.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Riverside Soft-Tissue Clinic",
            "time_zone": "America/Toronto",
            "email": "hello@riverside.example",
            "phone": "+1 416 555 0100",
            # Off so the printed demo logins work straight away; real clinics keep it on.
            "two_factor_required": False,
        },
    )
    location, _ = Location.objects.get_or_create(
        clinic=clinic,
        name="Main street",
        defaults={
            "address_line1": "100 Main St",
            "city": "Toronto",
            "region": "ON",
            "postal_code": "M5V 1A1",
            "directions": "Second floor, the door beside the pharmacy; the lift is at the back of the lobby.",
        },
    )
    services = {}
    for name, code, minutes, buffer, price in SERVICES:
        services[code], _ = Service.objects.get_or_create(
            clinic=clinic,
            name=name,
            defaults={
                "modality": Modality.objects.get(code=code),
                "duration_minutes": minutes,
                "buffer_minutes": buffer,
                "price": price,
            },
        )
    for room_name, codes in [("Room 1", ["art", "massage", "acupuncture"]), ("Room 2", ["massage", "acupuncture"])]:
        room, _ = Room.objects.get_or_create(clinic=clinic, name=room_name, defaults={"location": location})
        room.services.add(*[services[c] for c in codes])

    for username, first, last, role, display, codes in STAFF:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@riverside.example"},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        membership_set(clinic=clinic, user=user, role=role)
        if display and not Practitioner.objects.filter(clinic=clinic, user=user).exists():
            practitioner_create(
                clinic=clinic,
                user=user,
                display_name=display,
                modalities=Modality.objects.filter(code__in=codes),
                services=[services[c] for c in codes if c in services],
                registration_number=f"RMT-{1000 + len(username)}",
            )
    stdout.write(f"clinic: {clinic.name} (slug {clinic.slug})\n")
    return clinic
