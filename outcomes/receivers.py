"""Listeners on other apps' events (connected in OutcomesConfig.ready)."""

from __future__ import annotations

import logging

from django.db import transaction

from intake.models import IntakeSubmission
from outcomes.services import outcome_baselines_after_intake

logger = logging.getLogger(__name__)


def baseline_after_intake(sender, submission_id: int, **kwargs) -> None:
    """The baseline comes with intake: send the clinic's baseline measures once the intake is in.
    Runs after the intake's commit; a failure here must not fail the patient's submission."""
    try:
        with transaction.atomic():
            submission = IntakeSubmission.objects.select_related(
                "clinic", "patient__clinic", "link__appointment__practitioner"
            ).get(pk=submission_id)
            outcome_baselines_after_intake(submission=submission)
    except Exception:  # the intake is saved; the clinic can still send the measure by hand
        logger.exception("outcome baselines after intake %s failed", submission_id)
