"""Read endpoints for the clinic's directory: practitioners, services, rooms, locations.

They change rarely and through the admin (owners), so the API exposes them read-only.
"""

from django_filters import rest_framework as filters
from rest_framework import viewsets

from clinic.api import ClinicScopedMixin
from clinic.models import Location, Practitioner, Room, Service
from clinic.serializers import LocationSerializer, PractitionerSerializer, RoomSerializer, ServiceSerializer


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
