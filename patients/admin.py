"""Patient admin: index-backed search, a flag badge, duplicate warning on add, merge, archive.

The patient page shows active flags on top, contact details and consents, the
intake history and each submission as a readable summary (clinical roles only;
each view of that summary is audited).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from clinic.admin import ClinicScopedAdmin
from clinic.models import AuditAction, OptOut
from clinic.security.access import ADMIN_BREAK_GLASS_MESSAGE, BreakGlassRequired, clinical_access_enforce
from clinic.security.audit import audit_record
from intake.flag_detail import flag_neutral_text, with_flag_detail_for_staff
from intake.models import FlagSeverity, IntakeLink, IntakeSubmission
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


def _flags_for(user, patient: Patient) -> list:
    """Active flags, each with `shows_detail` and the neutral line for staff who may not read
    the patient's record (intake.flag_detail)."""
    flags = list(with_flag_detail_for_staff(patient.flags.active().select_related("acknowledged_by"), user))
    for flag in flags:
        flag.neutral_text = flag_neutral_text(flag.severity)
    return flags


@admin.register(Patient)
class PatientAdmin(ClinicScopedAdmin):
    form = PatientAdminForm
    change_form_template = "admin/patients/patient/change_form.html"
    list_display = ["family_name", "given_name", "birth_date", "email", "mobile_phone", "flag_badge", "is_archived"]
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

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_flags=Count("flags", filter=Q(flags__cleared_at__isnull=True), distinct=True),
                urgent_flags=Count(
                    "flags",
                    filter=Q(flags__cleared_at__isnull=True, flags__severity=FlagSeverity.URGENT),
                    distinct=True,
                ),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        # One trigram-indexed column instead of an OR of icontains over four columns.
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term), False

    @admin.display(description="Flags", ordering="active_flags")
    def flag_badge(self, patient):
        if not getattr(patient, "active_flags", 0):
            return ""
        colour = "#b3261e" if patient.urgent_flags else "#9a6700"
        label = f"{patient.urgent_flags} urgent" if patient.urgent_flags else f"{patient.active_flags} caution"
        return format_html(
            '<span style="background:{};color:#fff;border-radius:9px;padding:1px 8px;font-weight:600">{}</span>',
            colour,
            label,
        )

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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        patient = self.get_object(request, object_id)
        if patient is not None:
            extra_context.update(self._clinical_context(request, patient))
        return super().change_view(request, object_id, form_url, extra_context)

    def _clinical_context(self, request, patient: Patient) -> dict:
        context = {
            "flags": _flags_for(request.user, patient),
            "flag_admin_url": reverse("admin:intake_patientflag_changelist") + f"?patient__id__exact={patient.pk}",
            "links": list(IntakeLink.objects.filter(patient=patient).select_related("questionnaire")[:20]),
            "can_read_intake": request.user.has_perm("intake.view_intakesubmission"),
        }
        if context["can_read_intake"] and not request.user.is_superuser:
            try:
                clinical_access_enforce(request=request, patient=patient, via="admin")
            except BreakGlassRequired:
                messages.warning(request, ADMIN_BREAK_GLASS_MESSAGE)
                context["can_read_intake"] = False
                context["clinical_locked"] = True
        if context["can_read_intake"]:
            submissions = list(
                IntakeSubmission.objects.filter(patient=patient)
                .select_related("questionnaire")
                .order_by("-submitted_at")
            )
            context["submissions"] = [
                {"submission": s, "summary": s.questionnaire.form.summary(s.answers)} for s in submissions
            ]
            if submissions:
                audit_record(
                    action=AuditAction.VIEW, obj=patient, patient_id=patient.pk, request=request, via="admin",
                    reason="Patient page with intake summaries", extra={"submissions": [s.pk for s in submissions]},
                )  # fmt: skip
        return context

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
