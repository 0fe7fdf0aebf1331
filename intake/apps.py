from django.apps import AppConfig

from clinic.security.roles import ALL_ACTIONS


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Intake"
    default_auto_field = "django.db.models.BigAutoField"

    # Receptionists send links and see that a patient has flags, never the answers.
    role_permissions = {
        "owner": {
            "patientflag": ALL_ACTIONS,
            "intakelink": ALL_ACTIONS,
            "intakesubmission": ("view",),
            "questionnaire": ("view",),
            "intakesettings": ("view", "add", "change"),
        },
        "therapist": {
            "patientflag": ("view", "change"),
            "intakelink": ("view", "add", "change"),
            "intakesubmission": ("view",),
            "questionnaire": ("view",),
        },
        "receptionist": {
            "patientflag": ("view",),
            "intakelink": ("view", "add", "change"),
        },
    }

    def ready(self) -> None:
        from clinic.messaging.outbox import validity_check_register
        from clinic.models import MessageKind
        from intake import privacy
        from intake.api import ACTIVE_FLAGS
        from intake.services import intake_nudge_still_applies
        from patients.api import patient_extra_register
        from patients.privacy import record_part_register

        record_part_register(privacy.PART)
        patient_extra_register(ACTIVE_FLAGS)
        validity_check_register(MessageKind.INTAKE_NUDGE, intake_nudge_still_applies)

    def load_catalogs(self, stdout) -> None:
        from django.core.management import CommandError

        from intake.catalogs import load_questionnaires
        from intake.schema import DefinitionFileError

        try:
            load_questionnaires(stdout=stdout)
        except DefinitionFileError as exc:
            raise CommandError(f"questionnaire file rejected:\n{exc}") from exc

    def seed_demo(self, stdout):
        from intake.demo import seed_intake

        return seed_intake(stdout)
