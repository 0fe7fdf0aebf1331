"""Patient-facing measure pages (no login): /outcomes/<token>/"""

from django.urls import path

from outcomes import pages

app_name = "outcomes"

urlpatterns = [
    path("outcomes/<str:token>/", pages.fill, name="fill"),
    path("outcomes/<str:token>/thanks/", pages.thanks, name="thanks"),
]
