"""Public (no login) booking URLs: practitioners' secret calendar feeds, patients' waitlist
offer links and the confirm / "I can't come" links of reminder emails."""

from django.urls import path

from sessions import pages

urlpatterns = [
    path("calendar/<str:token>.ics", pages.calendar_feed, name="calendar-feed"),
    path("waitlist/offers/<str:token>/", pages.waitlist_offer_page, name="waitlist-offer"),
    path("visit/<str:token>/", pages.appointment_reply_page, name="appointment-reply"),
    path("visit/<str:token>/cannot-come/", pages.appointment_decline_page, name="appointment-decline"),
]
