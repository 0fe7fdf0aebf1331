from django.urls import path
from rest_framework.routers import SimpleRouter

from sessions import api

router = SimpleRouter(trailing_slash=True)
router.register("appointments", api.AppointmentViewSet, basename="appointment")
router.register("calendar-feeds", api.CalendarFeedViewSet, basename="calendar-feed")
router.register("waitlist", api.WaitlistEntryViewSet, basename="waitlist-entry")
router.register("waitlist-offers", api.WaitlistOfferViewSet, basename="waitlist-offer")
router.register("treatment-sessions", api.SessionSummaryViewSet, basename="treatment-session")
router.register("notes", api.NoteViewSet, basename="note")

urlpatterns = [
    path("slots/", api.SlotView.as_view(), name="slots"),
    path("pain-series/<int:patient_id>/", api.PainSeriesView.as_view(), name="pain-series"),
    *router.urls,
]
