"""Public (no login) booking URLs: practitioners' secret calendar feeds and patients'
waitlist offer links."""

from django.urls import path

from sessions import pages

urlpatterns = [
    path("calendar/<str:token>.ics", pages.calendar_feed, name="calendar-feed"),
    path("waitlist/offers/<str:token>/", pages.waitlist_offer_page, name="waitlist-offer"),
]
