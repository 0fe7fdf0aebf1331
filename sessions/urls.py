from django.urls import path
from rest_framework.routers import SimpleRouter

from sessions import views

router = SimpleRouter(trailing_slash=True)
router.register("appointments", views.AppointmentViewSet, basename="appointment")
router.register("calendar-feeds", views.CalendarFeedViewSet, basename="calendar-feed")
router.register("waitlist", views.WaitlistEntryViewSet, basename="waitlist-entry")
router.register("waitlist-offers", views.WaitlistOfferViewSet, basename="waitlist-offer")
router.register("treatment-sessions", views.SessionSummaryViewSet, basename="treatment-session")
router.register("notes", views.NoteViewSet, basename="note")

urlpatterns = [
    path("slots/", views.SlotView.as_view(), name="slots"),
    path("pain-series/<int:patient_id>/", views.PainSeriesView.as_view(), name="pain-series"),
    *router.urls,
]
