"""Admin pages of this app: booking (`booking`) and treatment notes (`notes`)."""

from sessions.admin import booking, notes  # noqa: F401 - registers their ModelAdmins
