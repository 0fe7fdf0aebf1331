"""Clinic endpoints: the directory (practitioners, services, rooms, locations; read-only,
since owners change them rarely and in the admin) and emergency (break-glass) access.
"""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from clinic.access import break_glass_open, break_glass_review
from clinic.api import ClinicScopedMixin
from clinic.models import ApiKey, BreakGlassAccess, Location, Practitioner, Room, Service
from clinic.roles import Role
from clinic.serializers import (
    BreakGlassAccessSerializer,
    LocationSerializer,
    PractitionerSerializer,
    RoomSerializer,
    ServiceSerializer,
)


class UpdatedSinceFilterSet(filters.FilterSet):
    updated_since = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")


class _DirectoryViewSet(ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    api_scope = "clinic"
    ordering_fields = ["id", "updated_at"]


class LocationViewSet(_DirectoryViewSet):
    queryset = Location.objects.all()
    serializer_class = LocationSerializer

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801 - DRF attribute name
        class Meta:
            model = Location
            fields = ["is_active"]


class ServiceViewSet(_DirectoryViewSet):
    queryset = Service.objects.select_related("modality")
    serializer_class = ServiceSerializer

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        modality = filters.CharFilter(field_name="modality__code")

        class Meta:
            model = Service
            fields = ["is_active"]


class RoomViewSet(_DirectoryViewSet):
    queryset = Room.objects.prefetch_related("services")
    serializer_class = RoomSerializer

    class filterset_class(UpdatedSinceFilterSet):  # noqa: N801
        class Meta:
            model = Room
            fields = ["is_active", "location"]


class PractitionerViewSet(_DirectoryViewSet):
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

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, ApiKey):
            raise PermissionDenied("Emergency access is opened and reviewed by signed-in staff only.")

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
        if request.role != Role.OWNER:
            raise PermissionDenied("Owners review emergency access.")
        access = break_glass_review(access=self.get_object(), reviewer=request.user)
        return Response(self.get_serializer(access).data)
