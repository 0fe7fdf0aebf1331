"""Demo notes: a few weeks of signed sessions for three patients, one per modality, so the
session page and its pain chart have something to show. Written once through the services
(safety checks, signing, audit); a clinic that already has notes keeps them."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from clinic.demo import demo_clinic
from clinic.models import Practitioner
from patients.models import Patient
from sessions import services
from sessions.models import AcupunctureEntry, ArtEntry, HomeCareEntry, MassageEntry, TreatmentSession
from treatments.models import AcupuncturePoint, ArtProtocol, BodyRegion, TriggerPoint

# patient (given, family), practitioner username, complaint, pain before/after per weekly visit
COURSES = [
    (("Maya", "Singh"), "ava", "Left calf pain since hill training.", [(7, 4), (5, 3), (4, 2), (3, 1)]),
    (("Liam", "Brown"), "ben", "Right thigh and knee pain after a fall on the ice.", [(6, 4), (5, 3), (4, 2)]),
    (("Noah", "Tremblay"), "chen", "Sciatica down the back of the left leg.", [(8, 5), (6, 4), (5, 3), (4, 2)]),
]  # fmt: skip


def _entries(username: str, session: TreatmentSession) -> list:
    if username == "ava":
        protocol = ArtProtocol.objects.get(clinic=None, code="gastrocnemius")
        return [
            ArtEntry(
                session=session,
                structure=protocol.structure,
                protocol=protocol,
                side="left",
                passes=4,
                response="Tissue texture improved; dorsiflexion up about 5 degrees.",
            ),  # fmt: skip
            HomeCareEntry(
                session=session,
                exercise="Wall calf stretch, knee straight and bent",
                sets=3,
                reps=30,
                frequency="twice daily",
                instructions="Hold each stretch 30 seconds.",
            ),  # fmt: skip
        ]
    if username == "ben":
        return [
            MassageEntry(
                session=session,
                region=BodyRegion.objects.get(clinic=None, code="thigh_front"),
                side="right",
                technique="trigger_point",
                pressure=3,
                minutes=20,
            ),  # fmt: skip
            HomeCareEntry(session=session, exercise="Quadriceps stretch", sets=2, reps=3, frequency="daily"),
        ]
    points = {p.code: p for p in AcupuncturePoint.objects.filter(clinic=None, code__in=["GB30", "BL40", "BL57"])}
    return [
        AcupunctureEntry(
            session=session,
            point=points[code],
            side="left",
            needles_inserted=1,
            needles_removed=1,
            depth_mm=depth,
            retention_minutes=20,
        )  # fmt: skip
        for code, depth in (("GB30", 50), ("BL40", 15), ("BL57", 30))
    ]


@transaction.atomic
def seed_notes(stdout) -> int:
    clinic = demo_clinic()
    if TreatmentSession.objects.filter(clinic=clinic).exists():
        stdout.write(f"treatment notes: {TreatmentSession.objects.filter(clinic=clinic).count()} (kept)\n")
        return 0
    now = timezone.now().replace(second=0, microsecond=0)
    created = 0
    for (given, family), username, complaint, visits in COURSES:
        patient = Patient.objects.get(clinic=clinic, given_name=given, family_name=family)
        practitioner = Practitioner.objects.select_related("user").get(clinic=clinic, user__username=username)
        actor = practitioner.user
        for week, (before, after) in enumerate(visits):
            started = now - dt.timedelta(weeks=len(visits) - week, hours=2)
            session = services.session_start(
                clinic=clinic, patient=patient, practitioner=practitioner, started_at=started, actor=actor,
                via="system", subjective=f"{complaint} Pain {before}/10 today.",
                objective="Palpation tender over the affected tissue; range of motion limited.",
                assessment="Soft-tissue adhesions, improving." if week else "Soft-tissue adhesions from overuse.",
                plan="Continue the course; home programme as below.", pain_before=before, pain_after=after,
                rebook_within_days=7, course_sessions=len(visits),
            )  # fmt: skip
            for entry in _entries(username, session):
                services.entry_add(entry=entry, actor=actor, via="system")
            if username == "ben":
                services.entry_save(
                    entry=session.massage_entries.get(),
                    actor=actor,
                    trigger_points=TriggerPoint.objects.filter(clinic=None, code__in=["vastus_medialis"]),
                    via="system",
                )
            services.note_sign(session=session, actor=actor, via="system")
            created += 1
    stdout.write(f"treatment notes: {created} signed demo sessions\n")
    return created
