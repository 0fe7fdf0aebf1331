"""Clinic-wide models, one module per concern; imported here so Django (and migrations,
which name `clinic.models.<name>`) find every model and validator under `clinic.models`."""

from clinic.models.api import (
    ApiKey,
    ExportFormat,
    ExportJob,
    ExportJobStatus,
    IdempotencyRecord,
    IdempotencyStatus,
    ImportJob,
    ImportJobStatus,
)
from clinic.models.audit import AuditAction, AuditCheckpoint, AuditEvent, BreakGlassAccess
from clinic.models.messaging import (
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    MessageTemplate,
    OptOut,
    OptOutSource,
    ReminderPolicy,
    ServiceReminderPolicy,
    default_lead_times,
    validate_lead_times,
)
from clinic.models.tenancy import (
    Clinic,
    ClinicOwned,
    Location,
    Membership,
    Practitioner,
    Room,
    SeriesConflictMode,
    Service,
    User,
    WorkerHeartbeat,
    validate_time_zone,
)
from clinic.models.tombstones import Tombstone, TombstoneReason
from clinic.models.webhooks import (
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventType,
)

__all__ = [
    "ApiKey", "AuditAction", "AuditCheckpoint", "AuditEvent", "BreakGlassAccess", "Clinic", "ClinicOwned",
    "ExportFormat", "ExportJob", "ExportJobStatus", "IdempotencyRecord", "IdempotencyStatus", "ImportJob",
    "ImportJobStatus", "Location", "Membership", "Message",
    "MessageChannel", "MessageKind", "MessageStatus", "MessageTemplate", "OptOut", "OptOutSource", "Practitioner",
    "ReminderPolicy", "Room", "SeriesConflictMode", "Service", "ServiceReminderPolicy", "Tombstone",
    "TombstoneReason", "User", "WebhookDelivery", "WebhookDeliveryStatus", "WebhookEndpoint", "WebhookEvent",
    "WebhookEventType", "WorkerHeartbeat",
    "default_lead_times", "validate_lead_times", "validate_time_zone",
]  # fmt: skip
