"""Booking API: appointments with explicit actions, series, free slots, waitlist, calendar feeds.

Views stay thin: validate, fetch within the clinic, call one service, serialise. Domain
errors become the house error shape: BookingConflictError and InvalidTransitionError are
409 (with the conflicting time), Django ValidationErrors are 400 with field errors.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.api.conventions import ClinicScopedMixin, Conflict, Gone
from clinic.api.idempotency import idempotent
from clinic.api.inputs import UtcIsoDateTimeFilter
from clinic.models import Service
from clinic.security.roles import ALL_ROLES, CLINICAL_ROLES, Role, declared_permissions
from sessions import services
from sessions.availability import free_slots
from sessions.models import (
    Appointment,
    AppointmentStatus,
    CalendarFeed,
    OfferStatus,
    WaitlistEntry,
    WaitlistOffer,
)
from sessions.serializers import (
    AppointmentBookSerializer,
    AppointmentCancelSerializer,
    AppointmentChangeSerializer,
    AppointmentRescheduleSerializer,
    AppointmentSerializer,
    AppointmentSeriesSerializer,
    CalendarFeedCreateSerializer,
    CalendarFeedSerializer,
    SlotListSerializer,
    SlotQuerySerializer,
    WaitlistEntrySerializer,
    WaitlistOfferSerializer,
)

OVERRIDE_PERMISSION = ("treatment_sessions", "override_hours_appointment")


class ClinicTimeZoneMixin:
    """Render every datetime in the clinic's time zone for the length of the request."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if getattr(request, "clinic", None) is not None:
            timezone.activate(request.clinic.tz)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        timezone.deactivate()
        return response


def _user(request):
    return request.user if request.user and request.user.is_authenticated else None


def _conflict(exc: services.BookingConflictError, clinic) -> Conflict:
    return Conflict(detail={"detail": exc.message(clinic.tz), "conflicts": exc.describe(clinic.tz)})


def _check_override(request, data) -> None:
    if not data.get("hours_override"):
        return
    role = getattr(request, "role", None)
    if role is None or OVERRIDE_PERMISSION not in declared_permissions()[Role(role).value]:
        raise exceptions.PermissionDenied("Your role cannot book outside working hours.")


class AppointmentFilter(filters.FilterSet):
    # UTC on the way to the database: PostgreSQL refuses ISO offsets beyond +-15:59 (a 500 otherwise).
    start_from = UtcIsoDateTimeFilter(field_name="start", lookup_expr="gte")
    start_to = UtcIsoDateTimeFilter(field_name="start", lookup_expr="lt")
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    status = filters.MultipleChoiceFilter(choices=AppointmentStatus.choices)

    class Meta:
        model = Appointment
        fields = ["practitioner", "patient", "room", "series"]


# What `POST /appointments/series/` answers: the series, what was booked and what was skipped.
SERIES_RESULT = inline_serializer(
    "AppointmentSeriesResult",
    fields={
        "series": serializers.IntegerField(),
        "mode": serializers.CharField(help_text="The clinic's series conflict mode when it was booked."),
        "booked": AppointmentSerializer(many=True),
        "skipped": serializers.ListField(
            child=inline_serializer(
                "SkippedOccurrence",
                fields={
                    "start": serializers.DateTimeField(),
                    "reason": serializers.CharField(),
                    "conflicts": serializers.ListField(child=serializers.DictField()),
                },
            )
        ),
    },
)


class AppointmentViewSet(
    ClinicTimeZoneMixin, ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """`POST /appointments/` books; moves and status changes are explicit actions."""

    queryset = Appointment.objects.all()
    serializer_class = AppointmentSerializer
    filterset_class = AppointmentFilter
    allowed_roles = ALL_ROLES
    api_scope = "appointments"
    idempotent_actions = ("create",)

    def get_serializer_class(self):
        return {
            "create": AppointmentBookSerializer,
            "series": AppointmentSeriesSerializer,
            "reschedule": AppointmentRescheduleSerializer,
            "cancel": AppointmentCancelSerializer,
        }.get(self.action, AppointmentSerializer)

    def _input(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _out(self, appointment, code=status.HTTP_200_OK):
        return Response(AppointmentSerializer(appointment, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=AppointmentBookSerializer, responses={201: AppointmentSerializer})
    def create(self, request, *args, **kwargs):
        # A retried booking (same Idempotency-Key) replays the first 201 instead of booking twice.
        return idempotent(request, lambda: self._book(request))

    def _book(self, request):
        data = self._input(request)
        _check_override(request, data)
        try:
            appointment = services.appointment_book(clinic=request.clinic, booked_by=_user(request), **data)
        except services.BookingConflictError as exc:
            raise _conflict(exc, request.clinic) from exc
        return self._out(appointment, status.HTTP_201_CREATED)

    @extend_schema(request=AppointmentSeriesSerializer, responses={201: SERIES_RESULT})
    @action(detail=False, methods=["post"])
    def series(self, request):
        data = self._input(request)
        clinic = request.clinic
        try:
            result = services.appointment_series_book(clinic=clinic, booked_by=_user(request), **data)
        except services.SeriesConflictError as exc:
            raise Conflict(
                detail={"detail": str(exc), "occurrences": self._skipped(exc.skipped, clinic)},
            ) from exc
        context = self.get_serializer_context()
        return Response(
            {
                "series": result.series.pk,
                "mode": clinic.series_conflict_mode,
                "booked": AppointmentSerializer(result.booked, many=True, context=context).data,
                "skipped": self._skipped(result.skipped, clinic),
            },
            status=status.HTTP_201_CREATED,
        )

    @staticmethod
    def _skipped(skipped, clinic):
        return [
            {
                "start": item["start"].astimezone(clinic.tz).isoformat(),
                "reason": item["reason"],
                "conflicts": services.BookingConflictError(item["conflicts"]).describe(clinic.tz)
                if item["conflicts"]
                else [],
            }
            for item in skipped
        ]

    def _act(self, fn, appointment=None, **kwargs):
        appointment = appointment or self.get_object()
        try:
            return self._out(fn(appointment=appointment, **kwargs))
        except services.BookingConflictError as exc:
            raise _conflict(exc, self.request.clinic) from exc
        except services.InvalidTransitionError as exc:
            raise Conflict(str(exc)) from exc

    @extend_schema(request=AppointmentRescheduleSerializer, responses=AppointmentSerializer)
    @action(detail=True, methods=["post"])
    def reschedule(self, request, pk=None):
        appointment = self.get_object()  # another clinic's appointment is a 404 before any body check
        data = self._input(request)
        _check_override(request, data)
        return self._act(services.appointment_reschedule, appointment, by=_user(request), **data)

    @extend_schema(request=AppointmentCancelSerializer, responses=AppointmentSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        appointment = self.get_object()
        data = self._input(request)
        return self._act(services.appointment_cancel, appointment, by=_user(request), **data)

    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._act(services.appointment_confirm, by=_user(request))

    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request, pk=None):
        return self._act(services.appointment_check_in, by=_user(request))

    @action(detail=True, methods=["post"], url_path="no-show")
    def no_show(self, request, pk=None):
        return self._act(services.appointment_no_show, by=_user(request))

    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self._act(services.appointment_complete, by=_user(request))

    # Every change of one appointment, oldest first: a short list, answered whole (no pages).
    @extend_schema(request=None, responses=AppointmentChangeSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def history(self, request, pk=None):
        appointment = self.get_object()
        changes = appointment.changes.select_related("by")
        return Response(AppointmentChangeSerializer(changes, many=True).data)


class SlotView(ClinicTimeZoneMixin, APIView):
    """`GET /slots/?service=&practitioner=&location=&start=&end=`: bookable starts, at most 31 days."""

    allowed_roles = ALL_ROLES
    api_scope = "appointments"
    isolation_model = Service  # the service asked about, for the generated API tests

    @extend_schema(parameters=[SlotQuerySerializer], responses=SlotListSerializer)
    def get(self, request):
        query = SlotQuerySerializer(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        data = query.validated_data
        clinic = request.clinic
        slots = free_slots(
            clinic=clinic,
            service=data["service"],
            start=data["start"],
            end=data["end"],
            now=timezone.now(),
            practitioner_ids=[data["practitioner"].pk] if data["practitioner"] else None,
            location_id=data["location"].pk if data["location"] else None,
        )
        # free_slots() shares one datetime object per instant between slots: format each once.
        formatted: dict[int, str] = {}

        def iso(value) -> str:
            text = formatted.get(id(value))
            if text is None:
                text = formatted[id(value)] = value.isoformat()
            return text

        return Response(
            {
                "service": data["service"].pk,
                "count": len(slots),
                "results": [
                    {
                        "practitioner": s.practitioner_id,
                        "location": s.location_id,
                        "room": s.room_id,
                        "start": iso(s.start),
                        "end": iso(s.end),
                    }
                    for s in slots
                ],
            }
        )


class CalendarFeedViewSet(ClinicScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Feeds of the clinic (owners) or of the therapist's own practitioner profile."""

    queryset = CalendarFeed.objects.all()
    serializer_class = CalendarFeedSerializer
    allowed_roles = CLINICAL_ROLES
    api_scope = "appointments"

    def get_queryset(self):
        qs = super().get_queryset()
        if self.request.role == Role.THERAPIST:
            qs = qs.filter(practitioner__user=self.request.user)
        return qs

    def create(self, request):
        serializer = CalendarFeedCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        practitioner = serializer.validated_data["practitioner"]
        if request.role == Role.THERAPIST and practitioner.user_id != request.user.pk:
            raise exceptions.ValidationError({"practitioner": ["Not found."]})
        feed, raw = services.calendar_feed_create(practitioner=practitioner, created_by=_user(request))
        body = CalendarFeedSerializer(feed).data
        body["url"] = f"{settings.PUBLIC_BASE_URL}/calendar/{raw}.ics"
        return Response(body, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        feed = self.get_object()
        services.calendar_feed_revoke(feed=feed)
        feed.refresh_from_db()
        return Response(CalendarFeedSerializer(feed).data)


class WaitlistEntryViewSet(
    ClinicTimeZoneMixin,
    ClinicScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = WaitlistEntry.objects.all()
    serializer_class = WaitlistEntrySerializer
    allowed_roles = ALL_ROLES
    api_scope = "appointments"
    filterset_fields = ["status", "patient", "service", "practitioner"]

    def perform_create(self, serializer):
        serializer.instance = services.waitlist_entry_create(
            clinic=self.request.clinic, created_by=_user(self.request), **serializer.validated_data
        )

    @extend_schema(request=None, responses=WaitlistEntrySerializer)  # reads no body
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        try:
            entry = services.waitlist_entry_withdraw(entry=self.get_object())
        except services.InvalidTransitionError as exc:
            raise Conflict(str(exc)) from exc
        return Response(WaitlistEntrySerializer(entry, context=self.get_serializer_context()).data)


class WaitlistOfferViewSet(
    ClinicTimeZoneMixin, ClinicScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = WaitlistOffer.objects.all()
    serializer_class = WaitlistOfferSerializer
    allowed_roles = ALL_ROLES
    api_scope = "appointments"
    filterset_fields = ["status", "entry", "practitioner"]

    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        offer = services.waitlist_offer_accept(offer=self.get_object(), by=_user(request))
        if offer.status == OfferStatus.EXPIRED:
            raise Gone("This offer has expired.")
        if offer.status != OfferStatus.ACCEPTED:
            raise Conflict(f"This offer is {offer.get_status_display().lower()}.")
        return Response(WaitlistOfferSerializer(offer, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        try:
            offer = services.waitlist_offer_decline(offer=self.get_object())
        except services.InvalidTransitionError as exc:
            raise Conflict(str(exc)) from exc
        return Response(WaitlistOfferSerializer(offer, context=self.get_serializer_context()).data)
