"""Admin pages of this app: booking (`booking`), treatment notes (`notes`), the Today page and
the landing panels (`today`)."""

from sessions.admin import booking, notes, today  # noqa: F401 - registers their ModelAdmins
