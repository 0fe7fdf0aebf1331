"""API views of the sessions app, split by concern: booking and notes.

Names are re-exported here so callers import from `sessions.views`.
"""

from sessions.views.booking import (
    OVERRIDE_PERMISSION,
    AppointmentFilter,
    AppointmentViewSet,
    CalendarFeedViewSet,
    ClinicTimeZoneMixin,
    SlotView,
    WaitlistEntryViewSet,
    WaitlistOfferViewSet,
    calendar_feed,
    waitlist_offer_page,
)
from sessions.views.notes import (
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
    "calendar_feed",
    "waitlist_offer_page",
]
