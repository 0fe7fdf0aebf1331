"""`GET /api/v1/deleted/?since=`: what a syncing integration must drop (clinic/tombstones.py).

`updated_since` on the other lists says what changed; this says what went away: deleted
(retention, a removed note entry), merged into another record (`replaced_by`), or erased
(anonymised: drop the copy of the person's identity). Clinic-scoped like every list; a key sees
only the types its scopes can read elsewhere (`patients`, `appointments`, `clinical`), and a
receptionist no clinical types.
"""

from __future__ import annotations

from django_filters import rest_framework as filters
from rest_framework import mixins, serializers, viewsets

from clinic.api.conventions import ClinicScopedMixin
from clinic.api.inputs import UtcIsoDateTimeFilter
from clinic.models import ApiKey, Tombstone, TombstoneReason
from clinic.security.roles import Role


class TombstoneSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tombstone
        fields = ["id", "object_type", "object_id", "reason", "replaced_by", "occurred_at"]
        read_only_fields = fields


class TombstoneFilterSet(filters.FilterSet):
    since = UtcIsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte", help_text="Only what went away at or after this time (ISO 8601)."
    )
    type = filters.CharFilter(field_name="object_type", help_text="`app_label.model`, e.g. `patients.patient`.")
    reason = filters.ChoiceFilter(choices=TombstoneReason.choices)

    class Meta:
        model = Tombstone
        fields: list[str] = []


class TombstoneViewSet(ClinicScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Deleted, merged and erased objects of the clinic by type and id, newest first."""

    api_scope = "clinic"
    queryset = Tombstone.objects.all()
    serializer_class = TombstoneSerializer
    filterset_class = TombstoneFilterSet
    ordering_fields = ["id"]

    def get_queryset(self):
        rows = super().get_queryset()
        request = self.request
        if isinstance(request.auth, ApiKey):
            readable = [
                scope for scope in ("patients", "appointments", "clinical") if request.auth.has_scope(f"{scope}:read")
            ]
            return rows.filter(scope__in=readable)
        if request.role == Role.RECEPTIONIST:
            return rows.exclude(scope="clinical")
        return rows
