from django.apps import AppConfig
from django.db.models.signals import post_migrate

from clinic.observability import heartbeat  # noqa: F401 - connects beat's heartbeat to its signals
from clinic.security.roles import ALL_ACTIONS


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = "Clinic"
    default_auto_field = "django.db.models.BigAutoField"

    role_permissions = {
        "owner": {
            "clinic": ("view", "change"),
            "location": ALL_ACTIONS,
            "room": ALL_ACTIONS,
            "service": ALL_ACTIONS,
            "practitioner": ALL_ACTIONS,
            "membership": ALL_ACTIONS,
            "apikey": ALL_ACTIONS,
            "auditevent": ("view",),
            "breakglassaccess": ("view", "change"),
            "webhookendpoint": ("view", "change", "delete"),
            "webhookdelivery": ("view",),
            "message": ("view", "change"),
            "reminderpolicy": ALL_ACTIONS,
            "servicereminderpolicy": ALL_ACTIONS,
            "messagetemplate": ALL_ACTIONS,
            "optout": ("view", "add"),
        },
        "therapist": {
            "clinic": ("view",),
            "location": ("view",),
            "room": ("view",),
            "service": ("view",),
            "practitioner": ("view",),
            "message": ("view",),
            "optout": ("view",),
        },
        "receptionist": {
            "clinic": ("view",),
            "location": ("view",),
            "room": ("view",),
            "service": ("view",),
            "practitioner": ("view",),
            "message": ("view",),
            "optout": ("view",),
        },
    }

    def ready(self) -> None:
        import clinic.api.schema
        import clinic.security.signin  # noqa: F401 - connects the sign-in audit receivers
        from clinic.security.roles import sync_role_groups

        # Keeps group permissions in step with models added by later migrations.
        post_migrate.connect(sync_role_groups, dispatch_uid="clinic.sync_role_groups")

    def seed_demo(self, stdout):
        from clinic.demo import seed_clinic

        return seed_clinic(stdout)
