from django.apps import AppConfig


class TreatmentsConfig(AppConfig):
    name = "treatments"
    verbose_name = "Treatment catalogs"
    default_auto_field = "django.db.models.BigAutoField"

    role_permissions = {
        "owner": {"*": ("view", "add", "change", "delete")},
        "therapist": {"*": ("view", "add", "change")},
        "receptionist": {"modality": ("view",)},
    }

    def load_catalogs(self, stdout) -> None:
        from treatments.catalogs import load_catalogs

        load_catalogs(stdout=stdout)
