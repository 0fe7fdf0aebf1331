from django.apps import AppConfig

from clinic.roles import ALL_ACTIONS


class SessionsConfig(AppConfig):
    name = "sessions"
    # `sessions` is taken by django.contrib.sessions; this label names our tables
    # and migrations and must never change.
    label = "treatment_sessions"
    verbose_name = "Appointments and treatment sessions"
    default_auto_field = "django.db.models.BigAutoField"

    # Front desk books and moves (and may override working hours); owners also set hours
    # and feeds; therapists see the schedule, manage their own feeds and exceptions.
    role_permissions = {
        "owner": {
            "*": ALL_ACTIONS,
            "appointment": (*ALL_ACTIONS, "override_hours"),
        },
        "therapist": {
            "appointment": ("view", "add", "change"),
            "appointmentseries": ("view",),
            "appointmentchange": ("view",),
            "workinghours": ("view",),
            "availabilityexception": ("view", "add", "change", "delete"),
            "calendarfeed": ("view", "add", "change"),
            "waitlistentry": ("view",),
            "waitlistoffer": ("view",),
        },
        "receptionist": {
            "appointment": ("view", "add", "change", "override_hours"),
            "appointmentseries": ("view", "add"),
            "appointmentchange": ("view",),
            "workinghours": ("view",),
            "availabilityexception": ("view", "add", "change", "delete"),
            "waitlistentry": ("view", "add", "change"),
            "waitlistoffer": ("view", "change"),
        },
    }

    def seed_demo(self, stdout):
        from sessions.demo import seed_appointments

        return seed_appointments(stdout)
