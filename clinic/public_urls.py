"""Staff pages outside the admin and the API: two-factor sign-in, the link of a staff alert."""

from django.urls import path

from clinic.messaging.alerts import staff_alert_open
from clinic.security import two_factor

urlpatterns = [
    path("account/two-factor/setup/", two_factor.two_factor_setup, name="two-factor-setup"),
    path("account/two-factor/verify/", two_factor.two_factor_verify, name="two-factor-verify"),
    path("account/two-factor/recovery-codes/", two_factor.two_factor_recovery_codes, name="two-factor-recovery"),
    path("staff/alerts/<int:pk>/", staff_alert_open, name="staff-alert-open"),
]
