"""FHIR Appointment writes: create books through `appointment_book` (a clash is 409 naming the
appointment holding the time), update moves it (`appointment_reschedule`) or changes its status
(cancelled, arrived, fulfilled, noshow) through the same services as the REST API.

What a client sends to book, either
- `slot: [{"reference": "Slot/<id>"}]` from a Slot search (practitioner, service and start), and
  the patient as a participant; or
- `start`, the patient and the practitioner as participants, and the service as
  `serviceType[0].coding` (`SERVICE_SYSTEM`, the service's id; what reads carry) or its exact name
  in `serviceType[0].text`.
"""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import exceptions

from clinic.api.conventions import Conflict
from clinic.api.inputs import in_supported_range
from clinic.fhir.writes import FhirWriteMixin, ReferenceNotFound, django_errors_as_fhir, resolve_reference
from clinic.models import Practitioner, Service
from patients.models import Patient
from sessions import services
from sessions.models import Appointment, AppointmentStatus

SERVICE_SYSTEM = f"{settings.PUBLIC_BASE_URL}/fhir/R4/service"
SLOT_ID = re.compile(r"^([0-9]{1,18})-([0-9]{1,18})-([0-9]{1,18})-([0-9]{8}T[0-9]{4})Z$")

# Where each booking field sits in the FHIR Appointment (for the services' field errors).
FIELD_EXPRESSIONS = {
    "patient": "Appointment.participant",
    "practitioner": "Appointment.participant",
    "service": "Appointment.serviceType",
    "start": "Appointment.start",
    "end": "Appointment.end",
    "room": "Appointment.participant",
    "notes": "Appointment.comment",
}


def slot_parts(slot_id: str) -> tuple[int, int, int, dt.datetime] | None:
    """(practitioner id, service id, location id, start) of a Slot id, or None if it names none."""
    match = SLOT_ID.match(slot_id)
    if match is None:
        return None
    try:
        start = dt.datetime.strptime(match.group(4), "%Y%m%dT%H%M").replace(tzinfo=dt.UTC)
    except ValueError:  # 20271399T9999: shaped like an id, names no time
        return None
    if not in_supported_range(start):
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), start


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def _user(request):
    return request.user if request.user and request.user.is_authenticated else None


def _conflict(exc: services.BookingConflictError, clinic) -> Conflict:
    return Conflict(detail={"detail": exc.message(clinic.tz), "conflicts": exc.describe(clinic.tz)})


def _instant(resource: dict, name: str) -> dt.datetime | None:
    raw = resource.get(name)
    if raw is None:
        return None
    try:  # a FHIR instant already (the R4B model checked it); Python reads at most microseconds
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or not in_supported_range(when):
        raise exceptions.ValidationError({f"Appointment.{name}": ["Give an instant with its offset, in 1900-2199."]})
    return when


class AppointmentWriteMixin(FhirWriteMixin):
    """Create and update for `FhirAppointmentViewSet` (sessions/fhir/scheduling.py)."""

    resource_type = "Appointment"

    # --- reading the resource -------------------------------------------------------------------

    def _participants(self, resource: dict) -> dict[str, object]:
        clinic = self.request.clinic
        types = {
            "Patient": Patient.objects.filter(clinic=clinic),
            "Practitioner": Practitioner.objects.filter(clinic=clinic),
        }
        found: dict[str, object] = {}
        for index, participant in enumerate(resource.get("participant") or []):
            expression = f"Appointment.participant[{index}].actor"
            if "actor" not in participant:
                raise exceptions.ValidationError({expression: ["Give the patient and the practitioner as actors."]})
            kind, row = resolve_reference(participant["actor"], expression=expression, types=types)
            if kind in found and found[kind].pk != row.pk:
                raise exceptions.ValidationError({expression: [f"Give one {kind}."]})
            found[kind] = row
        return found

    def _service(self, resource: dict) -> Service:
        services_of_clinic = Service.objects.filter(clinic=self.request.clinic)
        kinds = resource.get("serviceType") or []
        if len(kinds) != 1:
            raise exceptions.ValidationError({"Appointment.serviceType": ["Give one service (or a slot)."]})
        for index, coding in enumerate(kinds[0].get("coding") or []):
            if coding.get("system") == SERVICE_SYSTEM:
                code = coding.get("code") or ""
                service = services_of_clinic.filter(pk=int(code)).first() if _is_id(code) else None
                if service is None:
                    raise ReferenceNotFound(f"Appointment.serviceType[0].coding[{index}]", f"service {code}")
                return service
        text = kinds[0].get("text") or ""
        named = list(services_of_clinic.filter(name__iexact=text.strip())[:2]) if text.strip() else []
        if len(named) != 1:
            raise exceptions.ValidationError(
                {"Appointment.serviceType[0]": [f"Give a coding of {SERVICE_SYSTEM} or the exact name of one service."]}
            )
        return named[0]

    def _from_slot(self, resource: dict) -> tuple[Practitioner, Service, dt.datetime] | None:
        slots = resource.get("slot") or []
        if not slots:
            return None
        if len(slots) > 1:
            raise exceptions.ValidationError({"Appointment.slot[1]": ["Book one slot at a time."]})
        reference = slots[0].get("reference") or ""
        parts = slot_parts(reference.rsplit("/", 1)[-1]) if reference.startswith("Slot/") else None
        if parts is None:
            raise exceptions.ValidationError(
                {"Appointment.slot[0]": ["Give a reference like Slot/<id> from a Slot search."]}
            )
        practitioner_id, service_id, _, start = parts
        clinic = self.request.clinic
        practitioner = Practitioner.objects.filter(clinic=clinic, pk=practitioner_id).first()
        service = Service.objects.filter(clinic=clinic, pk=service_id).first()
        if practitioner is None or service is None:
            raise ReferenceNotFound("Appointment.slot[0]", reference)
        return practitioner, service, start

    # --- create ------------------------------------------------------------------------------

    def fhir_create(self, resource: dict) -> Appointment:
        if resource.get("status") != "booked":
            raise exceptions.ValidationError({"Appointment.status": ["A new appointment is 'booked'."]})
        participants = self._participants(resource)
        slot = self._from_slot(resource)
        if slot is not None:
            practitioner, service, start = slot
            named = participants.get("Practitioner")
            if named is not None and named.pk != practitioner.pk:
                raise exceptions.ValidationError({"Appointment.participant": ["The slot is another practitioner's."]})
            given = _instant(resource, "start")
            if given is not None and given != start:
                raise exceptions.ValidationError({"Appointment.start": ["The slot starts at another time."]})
        else:
            practitioner, service, start = participants.get("Practitioner"), self._service(resource), None
            start = _instant(resource, "start")
            if practitioner is None or start is None:
                raise exceptions.ValidationError(
                    {"Appointment": ["Give a slot, or a start, the practitioner as a participant and the service."]}
                )
        if "Patient" not in participants:
            raise exceptions.ValidationError({"Appointment.participant": ["Give the patient as a participant."]})
        end = _instant(resource, "end")
        if end is not None and end != start + dt.timedelta(minutes=service.duration_minutes):
            raise exceptions.ValidationError(
                {"Appointment.end": [f"{service.name} lasts {service.duration_minutes} minutes; leave end out."]}
            )
        try:
            return services.appointment_book(
                clinic=self.request.clinic,
                patient=participants["Patient"],
                practitioner=practitioner,
                service=service,
                start=start,
                booked_by=_user(self.request),
                notes=resource.get("comment", ""),
            )
        except services.BookingConflictError as exc:
            raise _conflict(exc, self.request.clinic) from exc
        except DjangoValidationError as exc:
            raise django_errors_as_fhir(exc, FIELD_EXPRESSIONS, "Appointment") from exc

    # --- update: a move, or a status change ----------------------------------------------------

    @transaction.atomic
    def fhir_update(self, appointment: Appointment, resource: dict) -> Appointment:
        participants = self._participants(resource)
        patient = participants.get("Patient")
        if patient is not None and patient.pk != appointment.patient_id:
            raise exceptions.ValidationError(
                {"Appointment.participant": ["An appointment's patient cannot change: cancel it and book another."]}
            )
        by, clinic = _user(self.request), self.request.clinic
        wanted = resource.get("status")
        practitioner = participants.get("Practitioner")
        start = _instant(resource, "start")
        try:
            moved = (start is not None and start != appointment.start) or (
                practitioner is not None and practitioner.pk != appointment.practitioner_id
            )
            if moved and wanted in ("booked", None):
                appointment = services.appointment_reschedule(
                    appointment=appointment,
                    start=start or appointment.start,
                    practitioner=practitioner
                    if practitioner and practitioner.pk != appointment.practitioner_id
                    else None,
                    by=by,
                )
            elif moved:
                raise exceptions.ValidationError(
                    {"Appointment.start": ["Move a booked appointment, then change its status."]}
                )
            return self._set_status(appointment, wanted, resource, by)
        except services.BookingConflictError as exc:
            raise _conflict(exc, clinic) from exc
        except services.InvalidTransitionError as exc:
            raise Conflict(str(exc)) from exc
        except DjangoValidationError as exc:
            raise django_errors_as_fhir(exc, FIELD_EXPRESSIONS, "Appointment") from exc

    def _set_status(self, appointment: Appointment, wanted: str | None, resource: dict, by) -> Appointment:
        current = appointment.status
        if wanted == "booked" and current in (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED):
            return appointment
        changes = {
            "cancelled": (AppointmentStatus.CANCELLED, services.appointment_cancel),
            "arrived": (AppointmentStatus.ARRIVED, services.appointment_check_in),
            "fulfilled": (AppointmentStatus.COMPLETED, services.appointment_complete),
            "noshow": (AppointmentStatus.NO_SHOW, services.appointment_no_show),
        }
        if wanted not in changes:
            raise exceptions.ValidationError(
                {
                    "Appointment.status": [
                        f"Set one of booked, {', '.join(changes)} ({wanted!r} is not a change we make)."
                    ]
                }
            )
        target, change = changes[wanted]
        if current == target:
            return appointment
        if wanted == "cancelled":
            reason = ((resource.get("cancelationReason") or {}).get("text") or "")[:200]
            return change(appointment=appointment, by=by, reason=reason)
        return change(appointment=appointment, by=by)
