"""Clinic endpoints: the directory (practitioners, services, rooms, locations; read-only,
since owners change them rarely and in the admin), the owners' API keys, audit trail and
webhooks, patient imports, and emergency (break-glass) access.
"""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from clinic.api.conventions import ClinicScopedMixin
from clinic.api.inputs import IdFilter, UpdatedSinceFilterSet, UtcIsoDateTimeFilter
from clinic.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEventSerializer,
    BreakGlassAccessSerializer,
    LocationSerializer,
    PractitionerSerializer,
    RoomSerializer,
    ServiceSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
)
from clinic.models import (
    ApiKey,
    AuditAction,
    AuditEvent,
    BreakGlassAccess,
    Location,
    Practitioner,
    Room,
    Service,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from clinic.security.access import break_glass_open, break_glass_review
from clinic.security.roles import OWNERS, Role
from clinic.services import api_key_create, api_key_revoke
from clinic.webhooks.delivery import webhook_endpoint_create, webhook_endpoint_update


class _DirectoryViewSet(ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Read-only directory of the clinic."""

    api_scope = "clinic"
    ordering_fields = ["id", "updated_at"]


class LocationViewSet(_DirectoryViewSet):
    """The clinic's locations (addresses where it treats patients)."""

    queryset = Location.objects.all()
    serializer_class = LocationSerializer

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801 - DRF attribute name
        class Meta:
            model = Location
            fields = ["is_active"]


class ServiceViewSet(_DirectoryViewSet):
    """Bookable services: modality, duration, buffer and price."""

    queryset = Service.objects.select_related("modality")
    serializer_class = ServiceSerializer

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        modality = filters.CharFilter(field_name="modality__code")

        class Meta:
            model = Service
            fields = ["is_active"]


class RoomViewSet(_DirectoryViewSet):
    """Treatment rooms and the services each allows."""

    queryset = Room.objects.prefetch_related("services")
    serializer_class = RoomSerializer

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        class Meta:
            model = Room
            fields = ["is_active", "location"]


class PractitionerViewSet(_DirectoryViewSet):
    """Therapists who take appointments, with their modalities and services."""

    queryset = Practitioner.objects.prefetch_related("modalities", "services")
    serializer_class = PractitionerSerializer

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        modality = filters.CharFilter(field_name="modalities__code")

        class Meta:
            model = Practitioner
            fields = ["is_active"]


class BreakGlassViewSet(ClinicScopedMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Emergency access to a patient's clinical record.

    Therapists open it with a reason (it lasts four hours); owners list and review
    every access. Only signed-in staff: an integration's API key cannot break the glass.
    """

    queryset = BreakGlassAccess.objects.select_related("patient", "user")
    serializer_class = BreakGlassAccessSerializer
    api_scope = "clinical"
    # Therapists open access, owners review it; the services enforce which does what.
    allowed_roles = frozenset({Role.OWNER, Role.THERAPIST})
    ordering_fields = ["opened_at", "id"]
    filterset_fields = ["patient", "user"]
    # Emergency access is opened and reviewed by signed-in staff only (403 for every key).
    api_keys_allowed = False

    def get_queryset(self):
        qs = super().get_queryset()
        return qs if self.request.role == Role.OWNER else qs.filter(user=self.request.user)

    def perform_create(self, serializer):
        access = break_glass_open(
            user=self.request.user,
            patient=serializer.validated_data["patient"],
            reason=serializer.validated_data["reason"],
            request=self.request,
        )
        serializer.instance = access

    @extend_schema(request=None, responses=BreakGlassAccessSerializer)
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        access = self.get_object()
        if request.role != Role.OWNER:
            raise PermissionDenied("Owners review emergency access.")
        access = break_glass_review(access=access, reviewer=request.user)
        return Response(self.get_serializer(access).data)


# --- owners: API keys and the audit trail -------------------------------------------------


class ApiKeyViewSet(
    ClinicScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """The clinic's API keys. Owners only, from a staff session: a key cannot mint or revoke keys."""

    allowed_roles = OWNERS
    api_keys_allowed = False
    api_scope = "clinic"
    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    ordering_fields = ["id"]

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        is_active = filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull")

        class Meta:
            model = ApiKey
            fields = ["name"]

    def get_serializer_class(self):
        return ApiKeyCreateSerializer if self.action == "create" else ApiKeySerializer

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = api_key_create(clinic=request.clinic, created_by=request.user, **data.validated_data)
        key.key = raw
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = self.get_object()
        api_key_revoke(key=key)
        key.refresh_from_db()
        return Response(ApiKeySerializer(key).data)


class AuditEventFilterSet(filters.FilterSet):
    # Audit rows never change, so "updated since" is "occurred since".
    updated_since = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_after = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = UtcIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    action = filters.ChoiceFilter(choices=AuditAction.choices)
    actor = IdFilter(field_name="actor_id")
    patient = IdFilter(field_name="patient_id")

    class Meta:
        model = AuditEvent
        fields = ["actor_label", "object_type", "object_id", "via", "request_id"]


class AuditEventViewSet(ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The clinic's audit trail, newest first. Owners only, read-only."""

    allowed_roles = OWNERS
    api_keys_allowed = False
    api_scope = "clinic"
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["id"]


# --- webhooks ----------------------------------------------------------------------------


class WebhookEndpointViewSet(ClinicScopedMixin, viewsets.ModelViewSet):
    """Endpoints that receive the clinic's signed webhook events (docs/webhooks.md).

    The signing secret is returned once, in the response that creates the endpoint.
    """

    allowed_roles = OWNERS
    api_scope = "webhooks"
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    ordering_fields = ["id"]

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        class Meta:
            model = WebhookEndpoint
            fields = ["is_active"]

    @extend_schema(responses={201: WebhookEndpointCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = webhook_endpoint_create(clinic=request.clinic, **serializer.validated_data)
        endpoint.secret = secret
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = webhook_endpoint_update(endpoint=serializer.instance, **serializer.validated_data)


class WebhookDeliveryViewSet(ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Delivery log: each event sent to each endpoint, its attempts and outcome."""

    allowed_roles = OWNERS
    api_scope = "webhooks"
    queryset = WebhookDelivery.objects.select_related("event")
    serializer_class = WebhookDeliverySerializer
    ordering_fields = ["id"]

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        event_type = filters.ChoiceFilter(field_name="event__type", choices=WebhookEventType.choices)
        event_id = filters.UUIDFilter(field_name="event__event_id")

        class Meta:
            model = WebhookDelivery
            fields = ["endpoint", "status"]
