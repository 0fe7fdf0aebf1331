"""Catalogs, read-only over the API: the shared rows plus the caller's clinic additions.
Clinics edit their additions in the admin."""

from __future__ import annotations

from django.db.models import F
from django.http import Http404
from rest_framework import viewsets

from treatments import serializers
from treatments.models import AcupuncturePoint, ArtProtocol, BodyRegion, Muscle, TriggerPoint


class _CatalogViewSet(viewsets.ReadOnlyModelViewSet):
    api_scope = "catalogs"
    lookup_field = "code"
    lookup_value_regex = "[A-Za-z0-9_-]+"
    filterset_fields = ["is_active"]

    def get_queryset(self):
        return super().get_queryset().for_clinic(self.request.clinic)

    def get_object(self):
        # A clinic's own row wins over a shared row with the same code.
        queryset = self.filter_queryset(self.get_queryset()).filter(code=self.kwargs["code"])
        obj = queryset.order_by(F("clinic").asc(nulls_last=True)).first()
        if obj is None:
            raise Http404
        return obj


class BodyRegionViewSet(_CatalogViewSet):
    queryset = BodyRegion.objects.select_related("parent")
    serializer_class = serializers.BodyRegionSerializer


class MuscleViewSet(_CatalogViewSet):
    queryset = Muscle.objects.select_related("region")
    serializer_class = serializers.MuscleSerializer
    filterset_fields = ["is_active", "kind"]


class TriggerPointViewSet(_CatalogViewSet):
    queryset = TriggerPoint.objects.select_related("muscle").prefetch_related("referral_regions")
    serializer_class = serializers.TriggerPointSerializer


class ArtProtocolViewSet(_CatalogViewSet):
    queryset = ArtProtocol.objects.select_related("structure")
    serializer_class = serializers.ArtProtocolSerializer


class AcupuncturePointViewSet(_CatalogViewSet):
    queryset = AcupuncturePoint.objects.select_related("region")
    serializer_class = serializers.AcupuncturePointSerializer
    filterset_fields = ["is_active", "meridian", "avoid_in_pregnancy"]
