"""Pages a patient reaches from a message, without signing in (patients/pages.py): the SMS
provider's inbound webhook (STOP replies) and the unsubscribe link of every email."""

from django.urls import path

from patients import pages

urlpatterns = [
    path("messages/sms/inbound/", pages.sms_inbound, name="messages-sms-inbound"),
    path("messages/unsubscribe/<str:token>/", pages.unsubscribe, name="messages-unsubscribe"),
]
