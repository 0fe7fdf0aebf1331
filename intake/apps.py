from django.apps import AppConfig

from clinic.roles import ALL_ACTIONS


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Intake"
    default_auto_field = "django.db.models.BigAutoField"

    role_permissions = {
        "owner": {"patientflag": ALL_ACTIONS},
        "therapist": {"patientflag": ("view", "change")},
        "receptionist": {"patientflag": ("view",)},
    }
