"""`GET /api/v1/messages/`: the message log, filtered by patient, appointment, status, kind."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django_filters import rest_framework as filters
from rest_framework import serializers, viewsets

from clinic.api.conventions import ClinicScopedMixin
from clinic.api.inputs import IdFilter
from clinic.messaging.outbox import message_about_models
from clinic.models import Message, MessageKind, MessageStatus
from clinic.security.roles import ALL_ROLES


class MessageSerializer(serializers.ModelSerializer):
    about_type = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id", "kind", "channel", "status", "reason", "patient", "to_user", "opened_at", "about_type", "about_id",
            "due_at",
            "expires_at", "attempts", "last_error", "sent_at", "provider_message_id", "recipient", "subject",
            "body", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_about_type(self, message: Message) -> str:
        return f"{message.about_type.app_label}.{message.about_type.model}"


class MessageFilterSet(filters.FilterSet):
    patient = IdFilter(field_name="patient_id")
    appointment = IdFilter(method="filter_appointment")
    status = filters.MultipleChoiceFilter(choices=MessageStatus.choices)
    kind = filters.MultipleChoiceFilter(choices=MessageKind.choices)

    class Meta:
        model = Message
        fields = ["patient", "appointment", "status", "kind", "channel"]

    def filter_appointment(self, queryset, name, value):
        # The appointment model is the one sessions registered as "appointment" (SessionsConfig.ready).
        model = message_about_models()[name]
        return queryset.filter(about_type=ContentType.objects.get_for_model(model), about_id=value)


class MessageViewSet(ClinicScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Message.objects.select_related("about_type")
    serializer_class = MessageSerializer
    filterset_class = MessageFilterSet
    allowed_roles = ALL_ROLES
    api_scope = "messages"
    ordering_fields = ["id", "due_at"]
