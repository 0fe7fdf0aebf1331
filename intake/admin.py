"""Intake admin: links (create through the service, revoke, re-send), submissions as readable
summaries (clinical roles; audited), flags (acknowledge), questionnaire versions, settings."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from clinic.admin import ClinicScopedAdmin, ReadOnlyAdminMixin, user_clinic_ids
from clinic.messaging.outbox import channel_choose
from clinic.models import AuditAction, Membership
from clinic.security.access import (
    ADMIN_BREAK_GLASS_MESSAGE,
    BreakGlassRequired,
    clinical_access_enforce,
    scope_clinical_rows_for_staff,
)
from clinic.security.audit import audit_record
from clinic.security.roles import Role
from intake.flag_detail import (
    CLINICAL_FIELDS,
    flag_detail_rule_for_staff,
    flag_neutral_text,
    with_flag_detail_for_staff,
)
from intake.models import (
    FlagSeverity,
    IntakeChoice,
    IntakeLink,
    IntakeSettings,
    IntakeSubmission,
    PatientFlag,
    Questionnaire,
)
from intake.services import (
    flag_acknowledge,
    intake_link_create,
    intake_link_resend,
    intake_link_revoke,
    intake_links_create,
)
from patients.admin import PatientAdmin
from patients.models import Patient


def _summary_html(form, answers) -> str:
    blocks = []
    for block in form.summary(answers):
        rows = format_html_join(
            "", "<dt><strong>{}</strong></dt><dd>{}</dd>", ((r["question"], r["answer"]) for r in block["answers"])
        )
        blocks.append(format_html("<h3>{}</h3><dl>{}</dl>", block["title"], rows))
    return format_html_join("", "{}", ((b,) for b in blocks))


class IntakeLinkForm(forms.ModelForm):
    intake = forms.ChoiceField(
        choices=[("", "The clinic's setting"), *IntakeChoice.choices],
        required=False,
        help_text="Which intake to send. With both, the patient gets two links, one for each form.",
    )
    send = forms.BooleanField(
        required=False, label="Send the link to the patient now (email or SMS, as they prefer and agreed)"
    )

    class Meta:
        model = IntakeLink
        fields = ["clinic", "patient", "appointment", "questionnaire"]

    def clean(self):
        cleaned = super().clean()
        patient, appointment = cleaned.get("patient"), cleaned.get("appointment")
        if patient is not None:
            if cleaned.get("clinic") and patient.clinic_id != cleaned["clinic"].pk:
                self.add_error("patient", "This patient belongs to another clinic.")
            if patient.is_archived:
                self.add_error("patient", "This patient is archived.")
            problem = channel_choose(patient)[1] if cleaned.get("send") else ""
            if problem:
                self.add_error(
                    "send", f"The link can't be sent to this patient ({problem}); copy it and send it another way."
                )
            if appointment is not None and appointment.patient_id != patient.pk:
                self.add_error("appointment", "This appointment is not this patient's.")
        if cleaned.get("questionnaire") and cleaned.get("intake"):
            self.add_error("intake", "Choose an intake or a questionnaire version, not both.")
        return cleaned


@admin.register(IntakeLink)
class IntakeLinkAdmin(ClinicScopedAdmin):
    form = IntakeLinkForm
    list_display = [
        "patient",
        "questionnaire",
        "status_label",
        "expires_at",
        "send_count",
        "submitted_at",
        "created_at",
    ]
    list_filter = ["status"]
    list_select_related = ["patient", "questionnaire"]
    search_fields = ["patient__family_name", "patient__given_name"]
    raw_id_fields = ["patient", "appointment"]
    actions = ["revoke_selected", "resend_selected"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["clinic", "patient", "appointment", "intake", "questionnaire", "send"]
        return ["patient", "appointment", "questionnaire", "companion", "status", "link_url", "expires_at",
                "send_count", "last_sent_at", "draft_saved_at", "submitted_at", "revoked_at", "created_by",
                "created_at"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "questionnaire":
            kwargs["queryset"] = Questionnaire.objects.filter(status="published").filter(
                Q(clinic__isnull=True) | Q(clinic__in=user_clinic_ids(request))
            )
            kwargs["required"] = False
            kwargs["help_text"] = "A particular version; leave empty to send the intake chosen above."
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Status")
    def status_label(self, link):
        return "Expired" if link.is_expired else link.get_status_display()

    @admin.display(description="Link")
    def link_url(self, link):
        return format_html('<a href="{0}">{0}</a>', link.url)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        common = {"patient": data["patient"], "appointment": data.get("appointment"), "created_by": request.user,
                  "send": data.get("send", False)}  # fmt: skip
        if data.get("questionnaire"):
            links = [intake_link_create(questionnaire=data["questionnaire"], **common)]
        else:
            links = intake_links_create(intake=data.get("intake") or None, **common)
        obj.pk = obj.id = links[0].pk
        if len(links) > 1:
            titles = ", ".join(str(link.questionnaire) for link in links)
            self.message_user(request, f"Two links were made, one for each intake: {titles}.")

    @admin.action(description="Revoke the selected links")
    def revoke_selected(self, request, queryset):
        for link in queryset:
            try:
                intake_link_revoke(link=link, by=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{link}: {' '.join(exc.messages)}", messages.WARNING)

    @admin.action(description="Re-send the selected links")
    def resend_selected(self, request, queryset):
        for link in queryset.select_related("patient"):
            try:
                intake_link_resend(link=link, by=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{link}: {' '.join(exc.messages)}", messages.WARNING)


@admin.register(IntakeSubmission)
class IntakeSubmissionAdmin(ReadOnlyAdminMixin, ClinicScopedAdmin):
    list_display = ["patient", "questionnaire", "submitted_at", "flag_count"]
    list_select_related = ["patient", "questionnaire"]
    search_fields = ["patient__family_name", "patient__given_name"]
    fields = ["patient", "questionnaire", "submitted_at", "signature_name", "consented_at", "flags_html", "summary"]
    readonly_fields = fields

    @admin.display(description="Flags")
    def flag_count(self, submission):
        return submission.flags.count()

    @admin.display(description="Flags raised")
    def flags_html(self, submission):
        return format_html_join("", "<div>{}</div>", ((str(f),) for f in submission.flags.all())) or "—"

    @admin.display(description="Answers")
    def summary(self, submission):
        return _summary_html(submission.questionnaire.form, submission.answers)

    def get_queryset(self, request):
        # Therapists list and open only the patients they may see (see clinic.security.access).
        return scope_clinical_rows_for_staff(super().get_queryset(request), user=request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        found = ClinicScopedAdmin.get_queryset(self, request).filter(pk=object_id) if str(object_id).isdigit() else []
        locked = next(iter(found), None)
        if locked is not None and self.has_view_permission(request, locked) and not request.user.is_superuser:
            try:
                clinical_access_enforce(request=request, patient=locked.patient, via="admin")
            except BreakGlassRequired:
                messages.error(request, ADMIN_BREAK_GLASS_MESSAGE)
                return HttpResponseRedirect(reverse("admin:intake_intakesubmission_changelist"))
        submission = self.get_object(request, object_id)
        if submission is not None and self.has_view_permission(request, submission):
            audit_record(action=AuditAction.VIEW, obj=submission, request=request, via="admin")
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(PatientFlag)
class PatientFlagAdmin(ClinicScopedAdmin):
    """Clinical fields (title, reason, rule, region, side) only for staff who may read the
    patient's record; others see the severity and a neutral line (intake.flag_detail)."""

    list_display = [
        "patient",
        "severity",
        "shown_title",
        "shown_region",
        "shown_side",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
    ]
    list_filter = ["severity", "rule_code", ("acknowledged_at", admin.EmptyFieldListFilter)]
    list_select_related = ["patient", "acknowledged_by"]
    actions = ["acknowledge_selected"]

    def get_queryset(self, request):
        return with_flag_detail_for_staff(super().get_queryset(request), request.user)

    def get_list_filter(self, request):
        # Filtering by rule reads the rule: only for those who see every flag's detail.
        if (
            flag_detail_rule_for_staff(request.user) is True
            or Membership.objects.filter(user=request.user, is_active=True, role=Role.OWNER).exists()
        ):
            return self.list_filter
        return [name for name in self.list_filter if name != "rule_code"]

    def get_readonly_fields(self, request, obj=None):
        names = [f.name for f in PatientFlag._meta.fields]
        if obj is not None and not obj.shows_detail:
            names = [name for name in names if name not in CLINICAL_FIELDS] + ["shown_title"]
        return names

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="title")
    def shown_title(self, flag):
        return flag.title if flag.shows_detail else flag_neutral_text(flag.severity)

    @admin.display(description="region")
    def shown_region(self, flag):
        return flag.region if flag.shows_detail else ""

    @admin.display(description="side")
    def shown_side(self, flag):
        return flag.get_side_display() if flag.shows_detail else ""

    def has_add_permission(self, request):
        return False

    @admin.action(description="Acknowledge the selected flags", permissions=["change"])
    def acknowledge_selected(self, request, queryset):
        for flag in queryset:
            flag_acknowledge(flag=flag, by=request.user)
        self.message_user(request, f"Acknowledged {queryset.count()} flag(s).", messages.SUCCESS)


def _source_html(source: str) -> str:
    """A question's source for staff (the patient never sees it)."""
    return format_html('<br><small class="source">Source: {}</small>', source) if source else ""


@admin.register(Questionnaire)
class QuestionnaireAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["title", "code", "version", "status", "published_at", "clinic"]
    list_filter = ["status", "code"]
    fields = ["title", "code", "version", "status", "published_at", "clinic", "outline"]
    readonly_fields = fields

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(Q(clinic__isnull=True) | Q(clinic__in=user_clinic_ids(request)))

    @admin.display(description="Sections and questions")
    def outline(self, questionnaire):
        form = questionnaire.form
        return format_html_join(
            "",
            "<h3>{}</h3><ul>{}</ul>",
            (
                (
                    s.title,
                    format_html_join(
                        "",
                        "<li>{} <em>({})</em>{}</li>",
                        ((q.text, q.type.label, _source_html(q.source)) for q in s.questions),
                    ),
                )
                for s in form.sections
            ),
        )


class IntakeSettingsForm(forms.ModelForm):
    # Django 6 reads a typed address without a scheme as https; say so now (and no deprecation warning).
    logo_url = forms.URLField(required=False, assume_scheme="https", label="Logo URL")

    class Meta:
        model = IntakeSettings
        fields = ["clinic", "intakes", "link_valid_days", "brand_color", "logo_url", "welcome_text"]


@admin.register(IntakeSettings)
class IntakeSettingsAdmin(ClinicScopedAdmin):
    form = IntakeSettingsForm
    list_display = ["clinic", "intakes", "link_valid_days", "brand_color"]


# --- the patient page, extended ---------------------------------------------------------------


def _flags_for(user, patient: Patient) -> list:
    """Active flags, each with `shows_detail` and the neutral line for staff who may not read
    the patient's record (intake.flag_detail)."""
    flags = list(with_flag_detail_for_staff(patient.flags.active().select_related("acknowledged_by"), user))
    for flag in flags:
        flag.neutral_text = flag_neutral_text(flag.severity)
    return flags


# Intake adds its part to the patients app's admin: the flag badge on the list, and on the
# patient page the active flags on top and the intake history with readable summaries (clinical
# roles only; each view of a summary is audited). Patients sits below intake and never imports it.
admin.site.unregister(Patient)


@admin.register(Patient)
class PatientWithIntakeAdmin(PatientAdmin):
    list_display = [*PatientAdmin.list_display[:-1], "flag_badge", PatientAdmin.list_display[-1]]

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
