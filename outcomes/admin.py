"""Outcome measures in the admin: settings, licensed wording, links, courses and the owners'
MCID report; and the trend charts on the patient page and the note page.

Outcomes sits above sessions and intake, so it extends their admins (patient page, note page)
by subclassing the registered ModelAdmin with a template that extends theirs: sessions and
patients never import outcomes, and the note page's own code is untouched.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from clinic.admin import ClinicScopedAdmin
from clinic.models import AuditAction, Clinic, Membership
from clinic.security.access import (
    ADMIN_BREAK_GLASS_MESSAGE,
    BreakGlassRequired,
    clinical_access_enforce,
    scope_clinical_rows_for_staff,
)
from clinic.security.audit import audit_record
from clinic.security.roles import Role
from intake.admin import PatientWithIntakeAdmin
from outcomes.charts import trend_svg
from outcomes.measures import measure_named
from outcomes.models import MeasureText, OutcomeCourse, OutcomeLink, OutcomeSettings
from outcomes.selectors import mcid_report, patient_series
from outcomes.services import (
    measure_form,
    measure_text_check,
    outcome_course_finish,
    outcome_link_create,
    outcome_link_revoke,
)
from patients.models import Patient
from sessions.admin.notes import TreatmentSessionAdmin
from sessions.models import TreatmentSession


def outcome_panel(request, patient: Patient, *, access_checked: bool = False) -> dict:
    """The trend per measure for a staff page, or why it is hidden. Clinical content: the care
    relationship rule (or break-glass) decides; showing any score is audited."""
    if not request.user.has_perm("outcomes.view_outcomeresponse"):
        return {"outcomes_shown": False}
    if not access_checked and not request.user.is_superuser:
        try:
            clinical_access_enforce(request=request, patient=patient, via="admin")
        except BreakGlassRequired:
            return {"outcomes_shown": False, "outcomes_locked": ADMIN_BREAK_GLASS_MESSAGE}
        except PermissionDenied:
            return {"outcomes_shown": False}
    series = patient_series(patient_id=patient.pk)
    if series:
        audit_record(
            action=AuditAction.VIEW, obj=patient, patient_id=patient.pk, request=request, via="admin",
            reason="Outcome measure trends",
            extra={"outcome_responses": [r.pk for s in series for r in s.responses]},
        )  # fmt: skip
    return {
        "outcomes_shown": True,
        "outcome_trends": [{"series": s, "chart": trend_svg(s), "summary": _summary(s)} for s in series],
    }


def _summary(series) -> str:
    measure, scored = series.measure, series.scored
    parts = [f"{len(scored)} score{'s' if len(scored) != 1 else ''}"]
    if scored:
        parts.append(f"baseline {scored[0].score.normalize():f} ({scored[0].recorded_on:%d %b %Y})")
    if len(scored) > 1:
        change = series.change
        verdict = "reached" if series.reached_mcid else "not yet reached"
        parts.append(
            f"latest {scored[-1].score.normalize():f}; change {change.normalize():+f} "
            f"(MCID {measure.mcid.normalize():f}: {verdict})"
        )
    if series.incomplete:
        parts.append(f"{len(series.incomplete)} incomplete, not scored")
    return "; ".join(parts)


# --- the patient page and the note page ---------------------------------------------------------

admin.site.unregister(Patient)


@admin.register(Patient)
class PatientWithOutcomesAdmin(PatientWithIntakeAdmin):
    change_form_template = "admin/outcomes/patient_change_form.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Intake's part of this page already asked the clinical access rule (and audited a
        # refusal); its answer is reused, so a refusal is audited once.
        if obj is not None and change:
            if context.get("clinical_locked"):
                context.update({"outcomes_shown": False, "outcomes_locked": ADMIN_BREAK_GLASS_MESSAGE})
            else:
                context.update(outcome_panel(request, obj, access_checked=bool(context.get("can_read_intake"))))
        return super().render_change_form(request, context, add, change, form_url, obj)


admin.site.unregister(TreatmentSession)


@admin.register(TreatmentSession)
class NoteWithOutcomesAdmin(TreatmentSessionAdmin):
    change_form_template = "admin/outcomes/note_change_form.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Reached only after the note page's own clinical access check passed (change_view).
        if obj is not None and change:
            context.update(outcome_panel(request, obj.patient, access_checked=True))
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- settings and licensed wording ------------------------------------------------------------


@admin.register(OutcomeSettings)
class OutcomeSettingsAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "baseline_measures", "repeat_every_visits", "repeat_every_weeks", "link_valid_days"]


class MeasureTextForm(forms.ModelForm):
    class Meta:
        model = MeasureText
        fields = ["clinic", "measure", "instructions", "items", "licence_note"]

    def clean(self):
        cleaned = super().clean()
        code = cleaned.get("measure")
        if code:
            measure = measure_named(code)
            if measure.text_redistributable:
                raise ValidationError({"measure": "This measure's text ships with the app; no wording is needed."})
            try:
                measure_text_check(measure=measure, items=cleaned.get("items"))
            except ValidationError as exc:
                raise ValidationError({"items": exc.messages}) from exc
        return cleaned


@admin.register(MeasureText)
class MeasureTextAdmin(ClinicScopedAdmin):
    form = MeasureTextForm
    list_display = ["measure", "clinic", "licence_note", "updated_at"]


# --- links and courses -----------------------------------------------------------------------


class OutcomeLinkForm(forms.ModelForm):
    send = forms.BooleanField(required=False, initial=True, help_text="Send the link now (email or SMS).")

    class Meta:
        model = OutcomeLink
        fields = ["clinic", "patient", "measure"]

    def clean(self):
        cleaned = super().clean()
        patient, clinic = cleaned.get("patient"), cleaned.get("clinic")
        if patient is not None and clinic is not None and patient.clinic_id != clinic.pk:
            raise ValidationError({"patient": "This patient belongs to another clinic."})
        if clinic is not None and cleaned.get("measure"):
            try:
                measure_form(clinic=clinic, measure=measure_named(cleaned["measure"]))
            except ValidationError as exc:
                raise ValidationError({"measure": exc.messages}) from exc
        return cleaned


@admin.register(OutcomeLink)
class OutcomeLinkAdmin(ClinicScopedAdmin):
    form = OutcomeLinkForm
    list_display = ["patient", "measure", "reason", "status", "expires_at", "submitted_at", "created_at"]
    list_filter = ["status", "measure", "reason"]
    list_select_related = ["patient"]
    raw_id_fields = ["patient"]
    actions = ["revoke_selected"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["clinic", "patient", "measure", "send"]
        return ["patient", "measure", "reason", "status", "link_url", "expires_at", "submitted_at", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    @admin.display(description="Link")
    def link_url(self, link):
        return format_html('<a href="{0}">{0}</a>', link.url)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = outcome_link_create(
            patient=data["patient"], measure=data["measure"], created_by=request.user, send=data.get("send", False)
        )
        obj.pk = obj.id = created.pk

    @admin.action(description="Revoke the selected links")
    def revoke_selected(self, request, queryset):
        for link in queryset:
            outcome_link_revoke(link=link)


@admin.register(OutcomeCourse)
class OutcomeCourseAdmin(ClinicScopedAdmin):
    list_display = ["patient", "measure", "practitioner", "started_at", "finished_at"]
    list_filter = ["measure", ("finished_at", admin.EmptyFieldListFilter)]
    list_select_related = ["patient", "practitioner"]
    fields = ["patient", "measure", "practitioner", "started_at", "finished_at", "finished_by"]
    readonly_fields = ["patient", "measure", "started_at", "finished_at", "finished_by"]
    actions = ["finish_selected"]

    def has_add_permission(self, request):
        return False  # courses start with their first link or typed-in form

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return scope_clinical_rows_for_staff(super().get_queryset(request), user=request.user)

    @admin.action(description="Finish the selected courses (discharge)")
    def finish_selected(self, request, queryset):
        for course in queryset:
            outcome_course_finish(course=course, by=request.user)
        self.message_user(request, f"Finished {queryset.count()} course(s).", messages.SUCCESS)

    def get_urls(self):
        view = self.admin_site.admin_view(self.report_view)
        return [path("report/", view, name="outcomes_report"), *super().get_urls()]

    def report_view(self, request):
        """Owners: per clinic and practitioner, the share of finished courses that reached the MCID."""
        if request.user.is_superuser:
            clinic_ids = list(Clinic.objects.values_list("pk", flat=True))
        else:
            clinic_ids = list(
                Membership.objects.filter(user=request.user, is_active=True, role=Role.OWNER).values_list(
                    "clinic_id", flat=True
                )
            )
        if not clinic_ids:
            raise PermissionDenied
        rows = mcid_report(clinic_ids=clinic_ids)
        context = {
            **self.admin_site.each_context(request),
            "title": "Outcome report: courses that reached the MCID",
            "rows": rows,
            "courses_url": reverse("admin:outcomes_outcomecourse_changelist"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/outcomes/report.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["report_url"] = reverse("admin:outcomes_report")
        return super().changelist_view(request, extra_context)
