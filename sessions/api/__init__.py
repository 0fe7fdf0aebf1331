"""API views of the sessions app, split by concern: booking and notes.

Names are re-exported here so callers import from `sessions.api`.
"""

from sessions.api.booking import (
    OVERRIDE_PERMISSION,
    AppointmentFilter,
    AppointmentViewSet,
    CalendarFeedViewSet,
    ClinicTimeZoneMixin,
    SlotView,
    WaitlistEntryViewSet,
    WaitlistOfferViewSet,
)
from sessions.api.notes import (
    ClinicalAccessMixin,
    NoteViewSet,
    PainSeriesView,
    SessionSummaryViewSet,
)

__all__ = [
    "AppointmentFilter",
    "AppointmentViewSet",
    "CalendarFeedViewSet",
    "ClinicTimeZoneMixin",
    "ClinicalAccessMixin",
    "NoteViewSet",
    "OVERRIDE_PERMISSION",
    "PainSeriesView",
    "SessionSummaryViewSet",
    "SlotView",
    "WaitlistEntryViewSet",
    "WaitlistOfferViewSet",
]
