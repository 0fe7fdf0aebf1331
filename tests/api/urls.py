"""Test-only URL conf: the project's URLs plus two small viewsets over Location that exercise the
shared machinery the way the other apps' endpoints will (an idempotent create, a clinical-only
resource). Used with @pytest.mark.urls("tests.api.urls")."""

from __future__ import annotations

import threading

from django.urls import include, path
from rest_framework import mixins, viewsets
from rest_framework.routers import SimpleRouter

from clinic.api.conventions import ClinicScopedMixin
from clinic.api.idempotency import IdempotentCreateMixin
from clinic.api.inputs import StrictModelSerializer
from clinic.models import Location
from clinic.security.roles import CLINICAL_ROLES
from clinic.urls import urlpatterns as project_urlpatterns


class LocationWriteSerializer(StrictModelSerializer):
    class Meta:
        model = Location
        fields = ["id", "name", "city"]
        read_only_fields = ["id"]


class Gate:
    """Holds a create inside its transaction until the test releases it."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()


class IdempotentLocationViewSet(
    IdempotentCreateMixin, ClinicScopedMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    queryset = Location.objects.all()
    serializer_class = LocationWriteSerializer
    api_scope = "clinic"
    gate: Gate | None = None

    def perform_create(self, serializer):
        super().perform_create(serializer)
        if self.gate is not None:
            self.gate.entered.set()
            self.gate.release.wait(timeout=60)


class ClinicalLocationViewSet(ClinicScopedMixin, viewsets.ModelViewSet):
    allowed_roles = CLINICAL_ROLES
    queryset = Location.objects.all()
    serializer_class = LocationWriteSerializer


router = SimpleRouter()
router.register("idempotent-locations", IdempotentLocationViewSet, basename="idempotent-location")
router.register("clinical-locations", ClinicalLocationViewSet, basename="clinical-location")

urlpatterns = [*project_urlpatterns, path("api/v1/test-only/", include((router.urls, "test"), namespace="test"))]
