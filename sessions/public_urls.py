"""Public (no login) booking URLs: the practitioners' secret calendar feeds."""

from django.urls import path

from sessions import views

urlpatterns = [
    path("calendar/<str:token>.ics", views.calendar_feed, name="calendar-feed"),
]
