"""Signals other apps listen to, so this app never imports them.

`note_signed` is sent after the signing transaction commits, with `session_id` and
`followup` (a `sessions.services.FollowUp`, or None when the note recommends none).
The reminders app connects a receiver that queues its rebooking nudge.
"""

from django.dispatch import Signal

note_signed = Signal()
