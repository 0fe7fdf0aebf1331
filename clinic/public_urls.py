"""Pages outside the admin and the API: staff two-factor sign-in, and the patient-facing
message endpoints (no login): the SMS provider's inbound webhook (STOP replies) and the
unsubscribe link of every email."""

from django.urls import path

from clinic.security import two_factor
from patients import pages as patient_pages

urlpatterns = [
    path("account/two-factor/setup/", two_factor.two_factor_setup, name="two-factor-setup"),
    path("account/two-factor/verify/", two_factor.two_factor_verify, name="two-factor-verify"),
    path("account/two-factor/recovery-codes/", two_factor.two_factor_recovery_codes, name="two-factor-recovery"),
    path("messages/sms/inbound/", patient_pages.sms_inbound, name="messages-sms-inbound"),
    path("messages/unsubscribe/<str:token>/", patient_pages.unsubscribe, name="messages-unsubscribe"),
]
