"""factory_boy factories shared by every test module."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import hashlib
import itertools
from collections.abc import Callable

import factory
from django.db import models
from django.utils import timezone

from clinic.models import (
    ApiKey,
    AuditAction,
    AuditEvent,
    BreakGlassAccess,
    Clinic,
    ExportJob,
    ExportJobStatus,
    ImportJob,
    Location,
    Membership,
    Message,
    Practitioner,
    Room,
    Service,
    Tombstone,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from clinic.security.roles import Role
from clinic.tombstones import tombstones_record
from intake.models import IntakeLink, IntakeSubmission, Questionnaire
from outcomes.models import OutcomeLink, OutcomeResponse
from patients.models import Patient
from sessions.models import (
    Appointment,
    AvailabilityException,
    CalendarFeed,
    ExceptionKind,
    WaitlistEntry,
    WaitlistOffer,
    WorkingHours,
)
from treatments.models import AcupuncturePoint, ArtProtocol, BodyRegion, Modality, Muscle, TriggerPoint


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    time_zone = "America/Toronto"
    # Tests about two-factor sign-in turn it on; the rest sign staff in with one factor.
    two_factor_required = False


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "a-long-test-password")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy passes the object
        if create:
            obj.save()


def staff(clinic: Clinic, role: Role, username: str | None = None) -> User:
    """A user with an active membership (and its group) in `clinic`."""
    from clinic.services import membership_set

    user = UserFactory(username=username) if username else UserFactory()
    membership_set(clinic=clinic, user=user, role=role)
    user.refresh_from_db()
    return user


class ModalityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Modality
        django_get_or_create = ["code"]

    code = "massage"
    name = factory.LazyAttribute(lambda m: m.code.title())


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Location {n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Service {n}")
    modality = factory.SubFactory(ModalityFactory)
    duration_minutes = 60
    buffer_minutes = 15
    price = 100


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Room {n}")


class PractitionerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Practitioner
        skip_postgeneration_save = True

    clinic = factory.SubFactory(ClinicFactory)
    user = factory.SubFactory(UserFactory)
    display_name = factory.LazyAttribute(lambda p: f"{p.user.first_name} {p.user.last_name}")

    @factory.post_generation
    def membership(obj, create, extracted, **kwargs):  # noqa: N805
        if create and not Membership.objects.filter(clinic=obj.clinic, user=obj.user).exists():
            from clinic.services import membership_set

            membership_set(clinic=obj.clinic, user=obj.user, role=Role.THERAPIST)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    birth_date = factory.Faker("date_of_birth", minimum_age=18, maximum_age=90)
    email = factory.Sequence(lambda n: f"patient{n}@example.com")
    mobile_phone = factory.Sequence(lambda n: f"+1416555{n % 10000:04d}")
    email_consent = True
    email_consent_at = factory.LazyFunction(timezone.now)


class AppointmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appointment

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    practitioner = factory.SubFactory(PractitionerFactory, clinic=factory.SelfAttribute("..clinic"))
    service = factory.SubFactory(ServiceFactory, clinic=factory.SelfAttribute("..clinic"))
    start = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0, second=0) + dt.timedelta(days=1))
    end = factory.LazyAttribute(lambda a: a.start + dt.timedelta(minutes=a.service.duration_minutes))
    blocked_until = factory.LazyAttribute(lambda a: a.end + dt.timedelta(minutes=a.service.buffer_minutes))
    status = "booked"
    cancelled_at = factory.LazyAttribute(lambda a: timezone.now() if a.status == "cancelled" else None)


class WorkingHoursFactory(factory.django.DjangoModelFactory):
    """Monday 09:00-17:00 unless told otherwise (wall-clock time in the clinic's zone)."""

    class Meta:
        model = WorkingHours

    clinic = factory.SubFactory(ClinicFactory)
    practitioner = factory.SubFactory(PractitionerFactory, clinic=factory.SelfAttribute("..clinic"))
    location = factory.SubFactory(LocationFactory, clinic=factory.SelfAttribute("..clinic"))
    weekday = 0
    start_time = dt.time(9)
    end_time = dt.time(17)


def bookable_service(clinic: Clinic, practitioner: Practitioner, **service_fields) -> Service:
    """A 45-minute service (no room, no buffer unless told) that `practitioner` offers at a new
    location every day 09:00-17:00 in the clinic's zone."""
    location = LocationFactory(clinic=clinic)
    service = ServiceFactory(clinic=clinic, **{"duration_minutes": 45, "requires_room": False, **service_fields})
    practitioner.services.add(service)
    for weekday in range(7):
        WorkingHoursFactory(clinic=clinic, practitioner=practitioner, location=location, weekday=weekday)
    return service


class AvailabilityExceptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AvailabilityException

    clinic = factory.SubFactory(ClinicFactory)
    practitioner = factory.SubFactory(PractitionerFactory, clinic=factory.SelfAttribute("..clinic"))
    kind = ExceptionKind.TIME_OFF
    date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=1))


class WaitlistEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WaitlistEntry

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    service = factory.SubFactory(ServiceFactory, clinic=factory.SelfAttribute("..clinic"))
    window_start = factory.LazyFunction(timezone.now)
    window_end = factory.LazyAttribute(lambda e: e.window_start + dt.timedelta(days=30))


# --- treatment sessions and intake flags (notes) ----------------------------------------
from intake.models import FlagSeverity, PatientFlag  # noqa: E402
from sessions.models import TreatmentSession  # noqa: E402


class TreatmentSessionFactory(factory.django.DjangoModelFactory):
    """A draft note with all four SOAP parts written (ready to sign once entries are in)."""

    class Meta:
        model = TreatmentSession

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    practitioner = factory.SubFactory(PractitionerFactory, clinic=factory.SelfAttribute("..clinic"))
    started_at = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0))
    subjective = "Sharp calf pain after running hills, worse on stairs."
    objective = "Tender medial gastrocnemius; ankle dorsiflexion limited on the left."
    assessment = "Gastrocnemius/soleus adhesions, likely overuse."
    plan = "ART to the calf, home stretches, re-book in 7 days."
    pain_before = 6
    pain_after = 3


class PatientFlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PatientFlag

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    rule_code = "pregnancy"
    severity = FlagSeverity.CAUTION
    title = factory.LazyAttribute(lambda f: f.rule_code.replace("_", " ").capitalize())


# --- intake ---------------------------------------------------------------------------


@functools.cache
def _parsed_definition(name: str) -> dict:
    from intake.catalogs import read_definition

    return read_definition(name)


def questionnaire_definition(name: str) -> dict:
    """A file of intake/catalog_data as `read_definition` returns it, parsed once per test process
    (PyYAML's pure-Python parser takes about 0.2 s a file, and a great many tests publish one);
    each caller gets its own copy."""
    return copy.deepcopy(_parsed_definition(name))


def default_questionnaire():
    """The shared "Leg, knee and back pain" questionnaire, published as `load_questionnaires`
    does (the same files through the same service; tests/intake/test_services.py runs the loader)."""
    from intake.catalogs import DATA_DIR
    from intake.models import Questionnaire
    from intake.services import questionnaire_publish

    for path in sorted(DATA_DIR.glob("*.yaml")):
        questionnaire_publish(definition=questionnaire_definition(path.name))
    return Questionnaire.objects.filter(code="leg-knee-back-pain", clinic__isnull=True).latest("version")


def intake_link(patient=None, **kwargs):
    """An open intake link on the default questionnaire (through the service, as staff would)."""
    from intake.services import intake_link_create

    patient = patient or PatientFactory()
    kwargs.setdefault("questionnaire", default_questionnaire())
    return intake_link_create(patient=patient, **kwargs)


def clean_intake_answers(**overrides) -> dict:
    """A complete default-intake answer set that raises no flag; override answers to test rules."""
    answers = {
        "pain_regions": [{"region": "knee", "side": "left"}, {"region": "calf", "side": "left"}],
        "pain_now": 4,
        "pain_worst": 7,
        "pain_best": 1,
        "pain_radiates": False,
        "numbness_tingling": False,
        "duration": "6_to_12_weeks",
        "onset_how": "gradual",
        "aggravating": ["running", "stairs"],
        "causes": ["overdoing_sport", "hills"],
        "local_factors": ["overuse"],
        "spine_history": ["none"],
        "imaging": ["none"],
        "surgery": False,
        "anticoagulants": False,
        "conditions": ["none"],
        "calf_swollen": False,
        "saddle_numbness": False,
        "bladder_bowel": False,
        "both_legs_weak": False,
        "progressive_weakness": False,
        "foot_drop": False,
        "recent_trauma": False,
        "fever": False,
        "unwell": False,
        "weight_loss": False,
        "night_pain": False,
        "goals": "Run 10 km again without knee pain.",
        "consent_to_treatment": True,
        "signature_name": "Maya Singh",
    }
    answers.update(overrides)
    return {code: value for code, value in answers.items() if value is not None}


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """A key row; its raw value is unknown (use clinic.services.api_key_create to call the API with one)."""

    class Meta:
        model = ApiKey

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Integration {n}")
    prefix = factory.Sequence(lambda n: f"ck_t{n:07d}")
    digest = factory.Sequence(lambda n: hashlib.sha256(f"test-key-{n}".encode()).hexdigest())
    scopes = factory.LazyFunction(lambda: ["clinic:read"])


def audit_event_for(clinic: Clinic) -> AuditEvent:
    from clinic.security.audit import audit_record

    patient = PatientFactory(clinic=clinic)
    return audit_record(action=AuditAction.VIEW, clinic=clinic, obj=patient, patient_id=patient.id)


def webhook_endpoint_for(clinic: Clinic) -> WebhookEndpoint:
    from clinic.webhooks.delivery import webhook_endpoint_create

    return webhook_endpoint_create(clinic=clinic, url="https://hooks.example.com/in", events=["patient.created"])[0]


def webhook_delivery_for(clinic: Clinic) -> WebhookDelivery:
    from clinic.webhooks.delivery import webhook_event_emit

    endpoint = webhook_endpoint_for(clinic)
    event = webhook_event_emit(clinic=clinic, event="patient.created", payload={"patient_id": 1})
    return WebhookDelivery.objects.get(endpoint=endpoint, event=event)


def import_job_for(clinic: Clinic) -> ImportJob:
    return ImportJob.objects.create(clinic=clinic, csv_text="given_name,family_name\nAda,Moss\n")


def export_job_for(clinic: Clinic) -> ExportJob:
    """A finished export waiting for its download, asked for by the clinic's first owner (who
    alone may download it), if it has one yet."""
    now = timezone.now()
    owner = Membership.objects.filter(clinic=clinic, role=Role.OWNER).order_by("id").first()
    return ExportJob.objects.create(
        clinic=clinic, kind="patients", status=ExportJobStatus.SUCCEEDED, content="id\n1\n", rows=1,
        finished_at=now, expires_at=now + dt.timedelta(hours=24), created_by=owner.user if owner else None,
    )  # fmt: skip


# --- objects of every API-served model, in one clinic ---------------------------------------
# Only rows of that clinic: a shared row (catalog, questionnaire) made here would be visible
# to every clinic and read as a leak by the isolation matrix.


_catalog_numbers = itertools.count(1)


def _catalog_code(prefix: str) -> str:
    return f"{prefix}-{next(_catalog_numbers)}"


def body_region_for(clinic: Clinic):
    return BodyRegion.objects.create(clinic=clinic, code=_catalog_code("test-region"), name="Test region")


def muscle_for(clinic: Clinic):
    return Muscle.objects.create(
        clinic=clinic, code=_catalog_code("test-muscle"), name="Test muscle", region=body_region_for(clinic)
    )


def trigger_point_for(clinic: Clinic):
    point = TriggerPoint.objects.create(
        clinic=clinic, code=_catalog_code("test-tp"), name="Test trigger point", muscle=muscle_for(clinic)
    )
    point.referral_regions.add(body_region_for(clinic))
    return point


def art_protocol_for(clinic: Clinic):
    return ArtProtocol.objects.create(
        clinic=clinic,
        code=_catalog_code("test-art"),
        name="Test protocol",
        structure=muscle_for(clinic),
        contact="Thumb contact on the adhesion.",
        tension="Shortened position.",
        patient_movement="Dorsiflexion.",
    )


def acupuncture_point_for(clinic: Clinic):
    # Extra-point codes EX-UE1..99 are valid WHO-style codes a clinic may add.
    number = next(_catalog_numbers) % 99 + 1
    point, _ = AcupuncturePoint.objects.get_or_create(
        clinic=clinic,
        code=f"EX-UE{number}",
        defaults={"name": "Test point", "meridian": "EX", "region": body_region_for(clinic)},
    )
    return point


def questionnaire_for(clinic: Clinic):
    """The default intake questionnaire, published as this clinic's own version."""
    from intake.services import questionnaire_publish

    # A code of its own each time: publishing an unchanged definition again returns the same row.
    definition = questionnaire_definition("leg_knee_back_pain.yaml")
    definition["code"] = _catalog_code(definition["code"])
    return questionnaire_publish(definition=definition, clinic=clinic)[0]


def intake_link_for(clinic: Clinic):
    from intake.services import intake_link_create

    return intake_link_create(patient=PatientFactory(clinic=clinic), questionnaire=questionnaire_for(clinic))


def intake_submission_for(clinic: Clinic):
    from intake.services import intake_submit

    return intake_submit(link=intake_link_for(clinic), answers=clean_intake_answers())


def outcome_link_for(clinic: Clinic):
    from outcomes.services import outcome_link_create

    return outcome_link_create(patient=PatientFactory(clinic=clinic), measure="nprs")


def outcome_response_for(clinic: Clinic):
    from outcomes.services import outcome_submit

    return outcome_submit(link=outcome_link_for(clinic), answers={"pain": 5})


def calendar_feed_for(clinic: Clinic):
    from sessions.services import calendar_feed_create

    return calendar_feed_create(practitioner=PractitionerFactory(clinic=clinic))[0]


def waitlist_offer_for(clinic: Clinic):
    from sessions.services import waitlist_offer_create

    entry = WaitlistEntryFactory(clinic=clinic)
    start = timezone.now().replace(microsecond=0, second=0) + dt.timedelta(days=2)
    return waitlist_offer_create(entry=entry, practitioner=PractitionerFactory(clinic=clinic), room=None, start=start)


def break_glass_access_for(clinic: Clinic):
    now = timezone.now()
    return BreakGlassAccess.objects.create(
        clinic=clinic,
        user=staff(clinic, Role.THERAPIST),
        patient=PatientFactory(clinic=clinic),
        reason="Covering for a colleague on sick leave.",
        opened_at=now,
        expires_at=now + dt.timedelta(hours=4),
    )


def message_for(clinic: Clinic):
    return MessageFactory(appointment=AppointmentFactory(clinic=clinic))


def note_entry_kwargs(session) -> dict:
    """URL kwargs of /notes/{pk}/entries/{kind}/{entry_id}/: a home-care entry of the session."""
    from sessions.models import HomeCareEntry

    entry = session.home_care.first() or HomeCareEntry.objects.create(
        clinic_id=session.clinic_id, session=session, exercise="Calf stretch", frequency="twice daily"
    )
    return {"kind": "home_care", "entry_id": entry.pk}


# Routes with URL kwargs after the object's own (nested routes), by URL name -> how to build
# those kwargs from the object (tests/api/endpoints.py).
API_ROUTE_KWARGS: dict[str, Callable[[models.Model], dict]] = {
    "v1:note-entry-delete": note_entry_kwargs,
}


def slots_query(service: Service) -> dict:
    start = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    return {"service": service.pk, "start": start.isoformat(), "end": (start + dt.timedelta(days=7)).isoformat()}


def session_with_procedure(clinic: Clinic):
    """A draft session with one massage entry, so FHIR Procedure has something to list."""
    from sessions.models import MassageEntry, MassageTechnique
    from treatments.models import BodyRegion

    session = TreatmentSessionFactory(clinic=clinic)
    region, _ = BodyRegion.objects.get_or_create(clinic=clinic, code="calf-local", defaults={"name": "Calf"})
    MassageEntry.objects.create(
        clinic=clinic, session=session, region=region, side="left", technique=MassageTechnique.values[0],
        pressure=3, minutes=10,
    )  # fmt: skip
    return session


def fhir_slot_query(practitioner: Practitioner) -> dict:
    service = practitioner.services.first() or ServiceFactory(clinic=practitioner.clinic)
    return {"service": service.pk, "schedule": f"Schedule/{practitioner.pk}"}


# GET routes that need query parameters naming the object, by URL name -> the query.
API_ROUTE_QUERY: dict[str, Callable[[models.Model], dict]] = {
    "v1:slots": slots_query,
    "fhir:slot-list": fhir_slot_query,
}


def tombstone_for(clinic):
    """A duplicate patient merged into another: the feed's row for it."""
    kept, duplicate = PatientFactory(clinic=clinic), PatientFactory(clinic=clinic)
    [row] = tombstones_record(
        clinic=clinic, model=Patient, ids=[duplicate.pk], reason="merged", scope="patients", replaced_by=kept.pk
    )
    return Tombstone.objects.get(pk=row.pk)


# Every model an API endpoint (/api/v1/, /fhir/R4/) serves -> how to make one in a clinic.
# tests/api/test_isolation.py walks every endpoint and fails when its model has no entry here,
# so a new endpoint is covered by the isolation matrix, query budgets and bad-input checks
# as soon as its factory is added.
API_OBJECT_FACTORIES: dict[type[models.Model], Callable[[Clinic], models.Model]] = {
    Location: lambda clinic: LocationFactory(clinic=clinic),
    Service: lambda clinic: ServiceFactory(clinic=clinic),
    Room: lambda clinic: RoomFactory(clinic=clinic, location=LocationFactory(clinic=clinic)),
    Practitioner: lambda clinic: PractitionerFactory(clinic=clinic),
    Patient: lambda clinic: PatientFactory(clinic=clinic),
    Appointment: lambda clinic: AppointmentFactory(clinic=clinic),
    ApiKey: lambda clinic: ApiKeyFactory(clinic=clinic),
    AuditEvent: audit_event_for,
    WebhookEndpoint: webhook_endpoint_for,
    WebhookDelivery: webhook_delivery_for,
    ImportJob: import_job_for,
    ExportJob: export_job_for,
    # booking
    WaitlistEntry: lambda clinic: WaitlistEntryFactory(clinic=clinic),
    WaitlistOffer: waitlist_offer_for,
    CalendarFeed: calendar_feed_for,
    # notes and catalogs
    TreatmentSession: lambda clinic: session_with_procedure(clinic),
    BodyRegion: body_region_for,
    Muscle: muscle_for,
    TriggerPoint: trigger_point_for,
    ArtProtocol: art_protocol_for,
    AcupuncturePoint: acupuncture_point_for,
    # intake
    Questionnaire: questionnaire_for,
    IntakeLink: intake_link_for,
    IntakeSubmission: intake_submission_for,
    PatientFlag: lambda clinic: PatientFlagFactory(clinic=clinic),
    # outcomes
    OutcomeLink: outcome_link_for,
    OutcomeResponse: outcome_response_for,
    # clinic
    BreakGlassAccess: break_glass_access_for,
    Message: message_for,
    Tombstone: tombstone_for,
}


def sms_patient(**kwargs) -> Patient:
    """A patient who agreed to both email and SMS and prefers SMS."""
    kwargs.setdefault("sms_consent", True)
    kwargs.setdefault("sms_consent_at", timezone.now())
    kwargs.setdefault("preferred_channel", "sms")
    return PatientFactory(**kwargs)


class ReminderPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "clinic.ReminderPolicy"
        django_get_or_create = ["clinic"]

    clinic = factory.SubFactory(ClinicFactory)


class MessageFactory(factory.django.DjangoModelFactory):
    """A scheduled, due appointment reminder by email (one per appointment by default)."""

    class Meta:
        model = "clinic.Message"

    class Params:
        appointment = factory.SubFactory(AppointmentFactory)

    clinic = factory.SelfAttribute("appointment.clinic")
    patient = factory.SelfAttribute("appointment.patient")
    kind = "appointment_reminder"
    channel = "email"
    about_type = factory.LazyFunction(lambda: _content_type(Appointment))
    about_id = factory.SelfAttribute("appointment.pk")
    occurrence = factory.LazyAttribute(lambda m: f"48h@{m.appointment.start.astimezone(dt.UTC):%Y-%m-%dT%H:%MZ}")
    context = factory.LazyAttribute(lambda m: {"start": f"{m.appointment.start.astimezone(dt.UTC):%Y-%m-%dT%H:%MZ}"})
    due_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=1))
    expires_at = factory.SelfAttribute("appointment.start")


def _content_type(model):
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(model)
