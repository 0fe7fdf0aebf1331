from django.apps import AppConfig

from clinic.security.roles import ALL_ACTIONS


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patients"
    default_auto_field = "django.db.models.BigAutoField"

    role_permissions = {
        "owner": {"patient": ALL_ACTIONS},
        "therapist": {"patient": ("view", "add", "change")},
        "receptionist": {"patient": ("view", "add", "change")},
    }

    def seed_demo(self, stdout):
        from patients.demo import seed_patients

        return seed_patients(stdout)
