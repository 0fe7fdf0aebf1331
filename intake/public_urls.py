"""Patient-facing intake pages (no login): /intake/<token>/..."""

from django.urls import path

from intake import pages

app_name = "intake"

urlpatterns = [
    path("intake/<str:token>/", pages.start, name="start"),
    path("intake/<str:token>/review/", pages.review, name="review"),
    path("intake/<str:token>/thanks/", pages.thanks, name="thanks"),
    path("intake/<str:token>/s/<slug:code>/", pages.section, name="section"),
]
