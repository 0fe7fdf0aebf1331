"""Admin pages of this app: booking (`booking`), the front-desk calendar (`calendar`, at
`/admin/calendar/`), treatment notes (`notes`), the Today page and the landing panels (`today`)."""

from sessions.admin import booking, calendar, notes, today  # noqa: F401 - registers their ModelAdmins and pages
