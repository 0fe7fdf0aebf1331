"""Events other apps may listen to. Sent after the transaction commits.

`intake_submitted(sender=IntakeSubmission, submission_id=int)`: a patient finished an
intake; its flags already exist. Receivers must be quick and must not raise; queue a
Celery task for anything slow.
"""

from django.dispatch import Signal

intake_submitted = Signal()
