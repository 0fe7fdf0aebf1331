"""Patient-facing intake pages (no login): /intake/<token>/..."""

from django.urls import path

from intake import views

app_name = "intake"

urlpatterns = [
    path("intake/<str:token>/", views.start, name="start"),
    path("intake/<str:token>/review/", views.review, name="review"),
    path("intake/<str:token>/thanks/", views.thanks, name="thanks"),
    path("intake/<str:token>/s/<slug:code>/", views.section, name="section"),
]
