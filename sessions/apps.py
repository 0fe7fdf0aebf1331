from django.apps import AppConfig

from clinic.roles import ALL_ACTIONS

NOTE_PERMISSIONS = {
    "treatmentsession": ALL_ACTIONS,
    "artentry": ALL_ACTIONS,
    "massageentry": ALL_ACTIONS,
    "acupunctureentry": ALL_ACTIONS,
    "homecareentry": ALL_ACTIONS,
    "addendum": ("view", "add"),
}


class SessionsConfig(AppConfig):
    name = "sessions"
    # `sessions` is taken by django.contrib.sessions; this label names our tables
    # and migrations and must never change.
    label = "treatment_sessions"
    verbose_name = "Appointments and treatment sessions"
    default_auto_field = "django.db.models.BigAutoField"

    # Note content (sessions, entries, addenda) is for clinical roles only: receptionists
    # learn that a visit happened from the appointment and the API's session summary.
    role_permissions = {
        "owner": {"appointment": ALL_ACTIONS, **NOTE_PERMISSIONS},
        "therapist": {"appointment": ("view", "add", "change"), **NOTE_PERMISSIONS},
        "receptionist": {"appointment": ("view", "add", "change")},
    }

    def seed_demo(self, stdout):
        from sessions.demo import seed_appointments
        from sessions.demo_notes import seed_notes

        seed_appointments(stdout)
        return seed_notes(stdout)
