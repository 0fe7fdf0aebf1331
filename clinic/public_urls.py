"""Patient-facing message endpoints (no login): the SMS provider's inbound webhook
(STOP replies) and the unsubscribe link of every email."""

from django.urls import path

from clinic import public_views

urlpatterns = [
    path("messages/sms/inbound/", public_views.sms_inbound, name="messages-sms-inbound"),
    path("messages/unsubscribe/<str:token>/", public_views.unsubscribe, name="messages-unsubscribe"),
]
