"""Patient admin: index-backed search, duplicate warning on add, merge, archive, opt-outs.

Intake extends this admin (intake/admin.py) with the flag badge on the list and, on the patient
page, active flags on top and the intake history with each submission as a readable summary.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from clinic.admin import ClinicScopedAdmin
from clinic.models import OptOut
from patients.messages import patient_opt_out
from patients.models import Patient
from patients.services import patient_archive, patient_create, patient_find_duplicates, patient_merge, patient_update

SERVICE_MANAGED = {"clinic", "email_consent_at", "email_consent_source", "sms_consent_at", "sms_consent_source"}


class PatientAdminForm(forms.ModelForm):
    confirm_not_duplicate = forms.BooleanField(
        required=False,
        label="This is a different person",
        help_text="Tick to create the record although a similar patient exists.",
    )

    class Meta:
        model = Patient
        fields = [
            "clinic", "given_name", "family_name", "preferred_name", "birth_date", "gender", "gender_text",
            "email", "mobile_phone", "address_line1", "address_line2", "city", "region", "postal_code", "country",
            "emergency_contact_name", "emergency_contact_phone", "preferred_channel", "email_consent", "sms_consent",
        ]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk or cleaned.get("confirm_not_duplicate"):
            return cleaned
        clinic = cleaned.get("clinic")
        if clinic is None:
            return cleaned
        matches = patient_find_duplicates(
            clinic=clinic,
            given_name=cleaned.get("given_name") or "",
            family_name=cleaned.get("family_name") or "",
            birth_date=cleaned.get("birth_date"),
            email=cleaned.get("email") or "",
            mobile_phone=str(cleaned.get("mobile_phone") or ""),
        )
        if matches:
            names = ", ".join(f"{p.full_name} (#{p.pk}, born {p.birth_date or 'unknown'})" for p in matches)
            raise ValidationError(
                f"Possible duplicate of: {names}. Open that record instead, or tick “This is a different person”."
            )
        return cleaned


@admin.register(Patient)
class PatientAdmin(ClinicScopedAdmin):
    form = PatientAdminForm
    change_form_template = "admin/patients/patient/change_form.html"
    list_display = ["family_name", "given_name", "birth_date", "email", "mobile_phone", "is_archived"]
    list_filter = ["is_archived", "preferred_channel"]
    search_fields = ["search_text"]  # the search box; served by get_search_results below
    search_help_text = "Name, email or phone number."
    readonly_fields = [
        "email_consent_at", "email_consent_source", "sms_consent_at", "sms_consent_source",
        "is_archived", "archived_at", "merged_into",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["clinic", "given_name", "family_name", "preferred_name", "birth_date",
                           "gender", "gender_text"]}),
        ("Contact", {"fields": ["email", "mobile_phone", "address_line1", "address_line2", "city", "region",
                                "postal_code", "country", "emergency_contact_name", "emergency_contact_phone"]}),
        ("Reminders and consent", {"fields": ["preferred_channel", "email_consent", "email_consent_at",
                                              "email_consent_source", "sms_consent", "sms_consent_at",
                                              "sms_consent_source"]}),
        ("Record", {"fields": ["is_archived", "archived_at", "merged_into"]}),
    ]  # fmt: skip
    actions = ["archive_selected", "merge_selected"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            fieldsets.append(("Duplicate check", {"fields": ["confirm_not_duplicate"]}))
        return fieldsets

    def get_search_results(self, request, queryset, search_term):
        # One trigram-indexed column instead of an OR of icontains over four columns.
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term), False

    def save_model(self, request, obj, form, change):
        fields = {f.name for f in Patient._meta.concrete_fields if f.editable} - SERVICE_MANAGED - {"id"}
        if change:
            original = Patient.objects.get(pk=obj.pk)
            data = {name: form.cleaned_data[name] for name in form.changed_data if name in fields}
            patient_update(patient=original, data=data, source="admin")
        else:
            data = {name: value for name, value in form.cleaned_data.items() if name in fields}
            created = patient_create(clinic=obj.clinic, data=data, allow_duplicate=True, source="admin")
            obj.pk = obj.id = created.pk

    @admin.action(description="Archive the selected patients")
    def archive_selected(self, request, queryset):
        for patient in queryset:
            patient_archive(patient=patient)
        self.message_user(request, f"Archived {queryset.count()} patient(s).", messages.SUCCESS)

    @admin.action(description="Merge the two selected records (the newer into the older)")
    def merge_selected(self, request, queryset):
        patients = list(queryset.order_by("created_at", "id"))
        if len(patients) != 2:
            self.message_user(request, "Select exactly two records of the same person to merge.", messages.ERROR)
            return
        target, source = patients
        try:
            patient_merge(source=source, target=target, by=request.user, request=request, via="admin")
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return
        self.message_user(
            request,
            format_html(
                "Merged #{} into <a href='{}'>{}</a>.",
                source.pk,
                reverse("admin:patients_patient_change", args=[target.pk]),
                target.full_name,
            ),
            messages.SUCCESS,
        )


@admin.register(OptOut)
class OptOutAdmin(ClinicScopedAdmin):
    """Opt-outs are the patient's consent; staff record one through the same service as the links."""

    list_display = ["created_at", "patient", "channel", "source", "clinic"]
    list_filter = ["channel", "source"]
    raw_id_fields = ["patient"]

    def get_readonly_fields(self, request, obj=None):
        return ["created_at"] if obj is None else [f.name for f in self.model._meta.fields]

    def save_model(self, request, obj, form, change):
        if not change:
            saved = patient_opt_out(patient=obj.patient, channel=obj.channel, source=obj.source)
            obj.pk = saved.pk
