"""Two submissions of one link at the same moment: exactly one is stored."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from intake.models import IntakeSubmission
from intake.services import LinkUnavailableError, intake_submit
from tests.factories import PatientFactory, clean_intake_answers, intake_link

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_double_submit_from_two_tabs_stores_one_submission_and_one_set_of_flags(clinic):
    link = intake_link(PatientFactory(clinic=clinic))
    answers = clean_intake_answers(fever=True)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def submit():
        try:
            start.wait()
            intake_submit(link=link, answers=answers)
            outcomes.append("stored")
        except LinkUnavailableError as exc:
            outcomes.append(exc.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["stored", "submitted"]
    assert IntakeSubmission.objects.count() == 1
    assert link.patient.flags.count() == 1
