"""Public (no login) booking URLs: practitioners' secret calendar feeds and patients'
waitlist offer links."""

from django.urls import path

from sessions import views

urlpatterns = [
    path("calendar/<str:token>.ics", views.calendar_feed, name="calendar-feed"),
    path("waitlist/offers/<str:token>/", views.waitlist_offer_page, name="waitlist-offer"),
]
