"""Admin pages of this app: booking (`booking`), the front-desk calendar (`calendar`, at
`/admin/calendar/`) and treatment notes (`notes`)."""

from sessions.admin import booking, calendar, notes  # noqa: F401 - registers their ModelAdmins and pages
