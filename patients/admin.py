from django.contrib import admin

from clinic.admin import ClinicScopedAdmin
from patients.models import Patient


@admin.register(Patient)
class PatientAdmin(ClinicScopedAdmin):
    list_display = ["family_name", "given_name", "birth_date", "email", "mobile_phone", "is_archived"]
    list_filter = ["is_archived", "preferred_channel"]
    search_fields = ["family_name", "given_name", "email", "mobile_phone"]
