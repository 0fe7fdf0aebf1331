from django.urls import path
from rest_framework.routers import SimpleRouter

from sessions import views

router = SimpleRouter(trailing_slash=True)
router.register("treatment-sessions", views.SessionSummaryViewSet, basename="treatment-session")
router.register("notes", views.NoteViewSet, basename="note")

urlpatterns = [
    path("pain-series/<int:patient_id>/", views.PainSeriesView.as_view(), name="pain-series"),
    *router.urls,
]
