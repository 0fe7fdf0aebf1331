"""factory_boy factories shared by every test module."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from clinic.models import Clinic, Location, Membership, Practitioner, Room, Service, User
from clinic.roles import Role
from patients.models import Patient
from sessions.models import Appointment
from treatments.models import Modality


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    time_zone = "America/Toronto"


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
