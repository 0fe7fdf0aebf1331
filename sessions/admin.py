from django.contrib import admin

from clinic.admin import ClinicScopedAdmin
from sessions.models import Appointment


@admin.register(Appointment)
class AppointmentAdmin(ClinicScopedAdmin):
    list_display = ["start", "end", "patient", "practitioner", "service", "room", "status"]
    list_filter = ["status", "practitioner"]
    date_hierarchy = "start"
    raw_id_fields = ["patient"]


# The notes admin lives in its own module; importing it registers it.
from sessions import notes_admin  # noqa: E402, F401
