"""FHIR R4 views of the schedule: Appointment (who, with whom, when, its status), and the
free-slot search as Schedule (one per practitioner) and Slot."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, viewsets
from rest_framework.response import Response

from clinic.api.conventions import ClinicScopedMixin
from clinic.api.inputs import StrictSerializer
from clinic.api.schema import ClinicAutoSchema
from clinic.fhir.base import (
    BUNDLE_SCHEMA,
    FHIR_QUERY_PARAMS,
    FORMAT_PARAMETER,
    RESOURCE_SCHEMA,
    FhirDateFilter,
    FhirFormatMixin,
    FhirReferenceFilter,
    FhirViewSet,
    fhir_date_value,
    fhir_datetime,
    fhir_meta,
    fhir_schema,
    searchset,
)
from clinic.fhir.resources import practitioner_to_fhir
from clinic.models import ApiKey, Location, Practitioner, Service
from patients.fhir import patient_to_fhir
from sessions.availability import Slot, free_slots
from sessions.fhir.booking import SERVICE_SYSTEM, AppointmentWriteMixin, slot_parts
from sessions.models import Appointment, AppointmentStatus
from sessions.serializers.booking import SlotQuerySerializer

_APPOINTMENT_STATUS = {
    AppointmentStatus.BOOKED: "booked",
    AppointmentStatus.CONFIRMED: "booked",
    AppointmentStatus.ARRIVED: "arrived",
    AppointmentStatus.COMPLETED: "fulfilled",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.NO_SHOW: "noshow",
}


def appointment_to_fhir(appointment: Appointment) -> dict:
    return {
        "resourceType": "Appointment",
        "id": str(appointment.pk),
        "meta": fhir_meta(appointment),
        "status": _APPOINTMENT_STATUS[appointment.status],
        "serviceType": [
            {
                "coding": [
                    {"system": SERVICE_SYSTEM, "code": str(appointment.service_id), "display": appointment.service.name}
                ],
                "text": appointment.service.name,
            }
        ],
        "start": fhir_datetime(appointment.start),
        "end": fhir_datetime(appointment.end),
        "minutesDuration": int((appointment.end - appointment.start).total_seconds() // 60),
        "participant": [
            {
                "actor": {"reference": f"Patient/{appointment.patient_id}", "display": str(appointment.patient)},
                "status": "accepted",
            },
            {
                "actor": {
                    "reference": f"Practitioner/{appointment.practitioner_id}",
                    "display": appointment.practitioner.display_name,
                },
                "status": "accepted",
            },
        ],
    }


class AppointmentSearch(filters.FilterSet):
    """The spec's Appointment search parameters; references as `Patient/12` or `12`."""

    patient = FhirReferenceFilter(types={"Patient": "patient_id"})
    practitioner = FhirReferenceFilter(types={"Practitioner": "practitioner_id"})
    actor = FhirReferenceFilter(types={"Patient": "patient_id", "Practitioner": "practitioner_id"})
    date = FhirDateFilter(field_name="start")
    status = filters.ChoiceFilter(
        method="filter_status", choices=[(v, v) for v in sorted(set(_APPOINTMENT_STATUS.values()))]
    )
    _lastUpdated = FhirDateFilter(field_name="updated_at")  # noqa: N815

    class Meta:
        model = Appointment
        fields: list[str] = []

    def filter_status(self, qs, name, value):
        return qs.filter(status__in=[ours for ours, theirs in _APPOINTMENT_STATUS.items() if theirs == value])


# `_include` values: the referenced resources added to a search's Bundle (search.mode "include").
INCLUDES = {"Appointment:patient": "patient", "Appointment:practitioner": "practitioner"}
INCLUDE_SCOPES = {"Appointment:patient": "patients", "Appointment:practitioner": "clinic"}
INCLUDE_PARAMETER = OpenApiParameter(
    "_include",
    str,
    OpenApiParameter.QUERY,
    enum=sorted(INCLUDES),
    description="Add each appointment's Patient (needs the `patients:read` scope) or Practitioner to the Bundle.",
)


@fhir_schema("Appointment", writes=True)
@extend_schema_view(list=extend_schema(parameters=[FORMAT_PARAMETER, INCLUDE_PARAMETER]))
class FhirAppointmentViewSet(AppointmentWriteMixin, FhirViewSet):
    """FHIR R4 Appointment: who, with whom, when, and its status. Create books, update moves,
    cancels or changes the status (sessions/fhir/booking.py)."""

    api_scope = "appointments"
    # One query for a page of any size, with only the columns the mapper reads.
    queryset = Appointment.objects.select_related("patient", "practitioner", "service").only(
        "id", "updated_at", "status", "start", "end", "service_id", "patient_id", "practitioner_id",
        "patient__given_name", "patient__family_name", "practitioner__display_name", "service__name",
    )  # fmt: skip
    filterset_class = AppointmentSearch
    extra_query_params = (*FHIR_QUERY_PARAMS, "_include")
    fhir_includes = tuple(sorted(INCLUDES))
    to_fhir = staticmethod(appointment_to_fhir)

    def list(self, request, *args, **kwargs):
        includes = self._includes(request)
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        response = self.get_paginated_response([appointment_to_fhir(obj) for obj in page])
        included = []
        for name in includes:  # one query per included type, whatever the page size
            field = INCLUDES[name]
            model = Appointment._meta.get_field(field).related_model
            ids = {getattr(obj, f"{field}_id") for obj in page}
            rows = model.objects.filter(clinic=request.clinic, pk__in=ids).order_by("pk")
            mapper = patient_to_fhir if field == "patient" else practitioner_to_fhir
            included += [mapper(row) for row in rows]
        if included:
            base = request.build_absolute_uri("/fhir/R4/").rstrip("/")
            response.data.setdefault("entry", []).extend(
                {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "include"}}
                for r in included
            )
        return response

    @staticmethod
    def _includes(request) -> list[str]:
        wanted = request.query_params.getlist("_include")
        unknown = [name for name in wanted if name not in INCLUDES]
        if unknown:
            raise exceptions.ValidationError({"_include": [f"Use {' or '.join(sorted(INCLUDES))}."]})
        if isinstance(request.auth, ApiKey):
            for name in wanted:
                scope = f"{INCLUDE_SCOPES[name]}:read"
                if not request.auth.has_scope(scope):
                    raise exceptions.PermissionDenied(f"_include={name} needs the scope {scope}.")
        return sorted(set(wanted))


# --- Schedule and Slot: the free-slot search -----------------------------------------------------


def schedule_to_fhir(practitioner: Practitioner) -> dict:
    """A practitioner's bookable time: `Schedule/<practitioner id>`."""
    resource = {
        "resourceType": "Schedule",
        "id": str(practitioner.pk),
        "meta": {"lastUpdated": fhir_datetime(practitioner.updated_at)},
        "active": practitioner.is_active,
    }
    services = [{"text": service.name} for service in practitioner.services.all()]
    if services:
        resource["serviceType"] = services
    resource["actor"] = [{"reference": f"Practitioner/{practitioner.pk}", "display": practitioner.display_name}]
    return resource


def slot_id(slot: Slot, service_id: int) -> str:
    return f"{slot.practitioner_id}-{service_id}-{slot.location_id}-{slot.start.astimezone(dt.UTC):%Y%m%dT%H%M}Z"


def slot_to_fhir(slot: Slot, service: Service) -> dict:
    return {
        "resourceType": "Slot",
        "id": slot_id(slot, service.pk),
        "serviceType": [{"text": service.name}],
        "schedule": {"reference": f"Schedule/{slot.practitioner_id}"},
        "status": "free",
        "start": fhir_datetime(slot.start),
        "end": fhir_datetime(slot.end),
    }


@fhir_schema("Schedule")
class FhirScheduleViewSet(FhirViewSet):
    """FHIR R4 Schedule: one per practitioner, the services they offer."""

    api_scope = "appointments"
    queryset = Practitioner.objects.prefetch_related("services")
    filterset_class = None
    to_fhir = staticmethod(schedule_to_fhir)


class SlotSearchSerializer(StrictSerializer):
    """FHIR Slot search: `service` (required), `schedule` (a practitioner), `location`, and
    `start` with `ge`/`lt` prefixes (default: the next 7 days; at most 31 days)."""

    service = serializers.IntegerField()
    schedule = serializers.CharField(required=False)
    location = serializers.IntegerField(required=False)
    start = serializers.ListField(child=serializers.CharField(), required=False, max_length=2)


class _OneBundleSchema(ClinicAutoSchema):
    """The Slot search answers one Bundle (computed, not a paged queryset): not an array of them."""

    def _is_list_view(self, serializer=None) -> bool:
        return False


@extend_schema_view(
    list=extend_schema(
        operation_id="fhir_slot_list",
        summary="Search free Slot resources (searchset Bundle)",
        parameters=[SlotSearchSerializer, FORMAT_PARAMETER],
        responses={200: OpenApiResponse(response=BUNDLE_SCHEMA)},
    ),
    retrieve=extend_schema(
        summary="Read one free Slot (404 once it is no longer free)",
        parameters=[
            OpenApiParameter("id", str, OpenApiParameter.PATH, description="e.g. `5-3-2-20270301T1400Z`"),
            FORMAT_PARAMETER,
        ],
        responses={200: OpenApiResponse(response=RESOURCE_SCHEMA)},
    ),
)
class FhirSlotViewSet(FhirFormatMixin, ClinicScopedMixin, viewsets.ViewSet):
    """FHIR R4 Slot: bookable starts from the free-slot search (`sessions.availability`)."""

    api_scope = "appointments"
    isolation_model = Practitioner
    schema = _OneBundleSchema()
    fhir_search_params = (  # for the CapabilityStatement: this search is computed, not a FilterSet
        ("service", "token", "The service's id (required)."),
        ("schedule", "reference", "Schedule/<practitioner id>."),
        ("location", "token", "The location's id."),
        ("start", "date", "ge/gt and lt/le bounds; default the next 7 days, at most 31."),
    )

    def _window(self, values: list[str]) -> tuple[dt.datetime, dt.datetime]:
        now = timezone.now()
        start, end = now, now + dt.timedelta(days=7)
        for value in values:
            prefix, raw = value[:2], value[2:]
            if prefix not in {"ge", "gt", "lt", "le"}:
                raise exceptions.ValidationError({"start": ["Use ge<date or date-time> and lt<date or date-time>."]})
            when = fhir_date_value(raw, parameter="start")
            if not isinstance(when, dt.datetime):  # a day starts at midnight in the clinic's zone
                when = dt.datetime.combine(when, dt.time.min, tzinfo=self.request.clinic.tz)
            if prefix in {"ge", "gt"}:
                start = when
            else:
                end = when
        return start, end

    def list(self, request):
        data = {key: request.query_params.get(key) for key in ("service", "schedule", "location")}
        data = {key: value for key, value in data.items() if value is not None}
        if "start" in request.query_params:
            data["start"] = request.query_params.getlist("start")
        unknown = sorted(set(request.query_params) - {"service", "schedule", "location", "start", "_format"})
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})
        incoming = SlotSearchSerializer(data=data)
        incoming.is_valid(raise_exception=True)
        schedule = (incoming.validated_data.get("schedule") or "").removeprefix("Schedule/")
        start, end = self._window(incoming.validated_data.get("start", []))
        query = SlotQuerySerializer(
            data={
                "service": incoming.validated_data["service"],
                "practitioner": int(schedule) if schedule.isdigit() else (None if not schedule else -1),
                "location": incoming.validated_data.get("location"),
                "start": start.isoformat(),
                "end": end.isoformat(),
            },
            context={"request": request},
        )
        query.is_valid(raise_exception=True)
        service = query.validated_data["service"]
        slots = self._free(query.validated_data)
        resources = [slot_to_fhir(s, service) for s in slots]
        links = [{"relation": "self", "url": request.build_absolute_uri()}]
        return Response(searchset(request, resources, links=links, total=len(slots)))

    def _free(self, data: dict) -> list[Slot]:
        return free_slots(
            clinic=self.request.clinic,
            service=data["service"],
            start=data["start"],
            end=data["end"],
            now=timezone.now(),
            practitioner_ids=[data["practitioner"].pk] if data.get("practitioner") else None,
            location_id=data["location"].pk if data.get("location") else None,
        )

    def retrieve(self, request, pk=None):
        parts = slot_parts(str(pk))
        if parts is None:
            raise exceptions.NotFound()
        practitioner_id, service_id, location_id, start = parts
        service = Service.objects.filter(clinic=request.clinic, pk=service_id).first()
        practitioner = Practitioner.objects.filter(clinic=request.clinic, pk=practitioner_id).first()
        location = Location.objects.filter(clinic=request.clinic, pk=location_id).first()
        if service is None or practitioner is None or location is None:
            raise exceptions.NotFound()
        free = self._free(
            {"service": service, "practitioner": practitioner, "location": location,
             "start": start, "end": start + dt.timedelta(minutes=1)}
        )  # fmt: skip
        slot = next((s for s in free if s.start == start), None)
        if slot is None:
            raise exceptions.NotFound("This slot is not free (any more).")
        return Response(slot_to_fhir(slot, service))
