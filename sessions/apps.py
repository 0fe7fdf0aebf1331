from django.apps import AppConfig

from clinic.roles import ALL_ACTIONS


class SessionsConfig(AppConfig):
    name = "sessions"
    # `sessions` is taken by django.contrib.sessions; this label names our tables
    # and migrations and must never change.
    label = "treatment_sessions"
    verbose_name = "Appointments and treatment sessions"
    default_auto_field = "django.db.models.BigAutoField"

    role_permissions = {
        "owner": {"appointment": ALL_ACTIONS},
        "therapist": {"appointment": ("view", "add", "change")},
        "receptionist": {"appointment": ("view", "add", "change")},
    }

    def seed_demo(self, stdout):
        from sessions.demo import seed_appointments

        return seed_appointments(stdout)
