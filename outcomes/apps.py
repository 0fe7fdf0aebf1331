from django.apps import AppConfig

from clinic.security.roles import ALL_ACTIONS


class OutcomesConfig(AppConfig):
    name = "outcomes"
    verbose_name = "Outcome measures"
    default_auto_field = "django.db.models.BigAutoField"

    # Scores are clinical: receptionists send links, never read answers or scores.
    role_permissions = {
        "owner": {
            "outcomesettings": ("view", "add", "change"),
            "measuretext": ALL_ACTIONS,
            "outcomecourse": ("view", "change"),
            "outcomelink": ("view", "add", "change"),
            "outcomeresponse": ("view", "add"),
        },
        "therapist": {
            "outcomecourse": ("view", "change"),
            "outcomelink": ("view", "add", "change"),
            "outcomeresponse": ("view", "add"),
        },
        "receptionist": {
            "outcomelink": ("view", "add"),
        },
    }

    def ready(self) -> None:
        from clinic.messaging.outbox import message_about_register, validity_check_register
        from clinic.models import MessageKind
        from intake.signals import intake_submitted
        from outcomes import receivers
        from outcomes.messages import outcome_link_still_applies
        from outcomes.models import OutcomeLink
        from outcomes.privacy import PART
        from patients.privacy import record_part_register

        record_part_register(PART)
        validity_check_register(MessageKind.OUTCOME_LINK, outcome_link_still_applies)
        message_about_register("outcome_link", OutcomeLink, select_related=("clinic", "patient"))
        intake_submitted.connect(receivers.baseline_after_intake, dispatch_uid="outcomes.baseline_after_intake")

    def seed_demo(self, stdout):
        from outcomes.demo import seed_outcomes

        return seed_outcomes(stdout)
