"""The therapist's admin for treatment sessions and notes.

Every write goes through sessions.services; every page that shows note content is audited,
and so is a refused attempt (receptionists have no permission on these models).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from clinic.admin import ClinicScopedAdmin, user_clinic_ids
from clinic.models import AuditAction, Clinic, Practitioner
from clinic.security.access import (
    ADMIN_BREAK_GLASS_MESSAGE,
    BreakGlassRequired,
    clinical_access_enforce,
    scope_clinical_rows_for_staff,
)
from clinic.security.audit import audit_record
from intake.models import FlagSeverity, PatientFlag
from patients.models import Patient
from sessions import selectors, services
from sessions.admin import today
from sessions.admin.note_entries import (
    AcupunctureEntryInline,
    ArtEntryInline,
    HomeCareInline,
    MassageEntryInline,
    safety_review,
)
from sessions.charts import PainPoint, pain_chart_svg
from sessions.models import Addendum, Appointment, TreatmentSession


class AddendumInline(admin.StackedInline):
    """Existing addenda read-only; a signed note takes new ones."""

    model = Addendum
    extra = 1
    fields = ["text", "author", "created_at"]
    readonly_fields = ["author", "created_at"]

    def has_add_permission(self, request, obj=None):
        return obj is not None and obj.is_signed and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class NoteStartForm(forms.ModelForm):
    """The add form asks the notes service's rule (`note_start_check`) while it validates: a note
    in a colleague's name, or for a patient the user may not open (audited), is a form error."""

    request = None  # set per request by `TreatmentSessionAdmin.get_form`

    def clean(self):
        data = super().clean()
        patient, practitioner = data.get("patient"), data.get("practitioner")
        if self.instance.pk is not None or self.request is None or patient is None or practitioner is None:
            return data
        try:
            services.note_start_check(
                patient=patient, practitioner=practitioner, actor=self.request.user, request=self.request, via="admin"
            )
        except BreakGlassRequired as refused:
            raise ValidationError({"patient": ADMIN_BREAK_GLASS_MESSAGE}) from refused
        except PermissionDenied as refused:
            raise ValidationError({"patient": "Only clinical staff write notes."}) from refused
        return data


SEVERITY_ORDER = {FlagSeverity.URGENT: 0, FlagSeverity.CAUTION: 1, FlagSeverity.INFO: 2}
NOTE_FORM_FIELDS = ["subjective", "objective", "assessment", "plan", "pain_before", "pain_after"]
FOLLOW_UP_FIELDS = ["rebook_within_days", "course_sessions", "needle_incident"]
SIGNATURE_FIELDS = ["status", "signed_at", "signed_by", "content_hash"]
NOTE_LOCKED_REFUSAL = "This note is signed and locked: nothing was changed. Add an addendum to correct it."
NOTE_ADDENDUM_ADDED = "Addendum added. The signed note itself is unchanged."


@admin.register(TreatmentSession)
class TreatmentSessionAdmin(ClinicScopedAdmin):
    change_form_template = "admin/treatment_sessions/treatmentsession/change_form.html"
    change_list_template = "admin/treatment_sessions/treatmentsession/change_list.html"
    list_display = ["started_at", "patient", "practitioner", "status", "pain_before", "pain_after", "signed_at"]
    list_filter = ["status", "practitioner"]
    date_hierarchy = "started_at"
    list_select_related = ["patient", "practitioner"]
    autocomplete_fields = ["patient"]
    raw_id_fields = ["appointment"]
    inlines = [ArtEntryInline, MassageEntryInline, AcupunctureEntryInline, HomeCareInline, AddendumInline]
    form = NoteStartForm

    class Media:
        css = {"all": ["sessions/note_entry.css"]}

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_fieldsets(self, request, obj=None):
        visit = ["clinic", "patient", "practitioner", "appointment", "started_at"]
        return [
            (None, {"fields": visit}),
            ("SOAP note", {"fields": NOTE_FORM_FIELDS}),
            ("Follow-up and needle count", {"fields": FOLLOW_UP_FIELDS}),
            ("Signature", {"fields": SIGNATURE_FIELDS}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return SIGNATURE_FIELDS
        if obj.is_signed:
            return [f for _, opts in self.get_fieldsets(request, obj) for f in opts["fields"]]
        return ["clinic", "patient", "practitioner", "appointment", "started_at", *SIGNATURE_FIELDS]

    def get_queryset(self, request):
        # Therapists list and open only the patients they may see (see clinic.security.access).
        return scope_clinical_rows_for_staff(super().get_queryset(request), user=request.user)

    def has_delete_permission(self, request, obj=None):
        # A note is a legal record: it is never deleted from the app.
        return False

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        profile = Practitioner.objects.filter(user=request.user, clinic__in=user_clinic_ids(request)).first()
        if profile is not None:
            initial.setdefault("practitioner", profile.pk)
            initial.setdefault("clinic", profile.clinic_id)
        appointment_id = request.GET.get("appointment", "")
        if appointment_id.isdigit():
            appointment = Appointment.objects.filter(pk=appointment_id, clinic__in=user_clinic_ids(request)).first()
            if appointment is not None:
                initial["started_at"] = appointment.start
        initial.setdefault("started_at", timezone.now())
        return initial

    # --- audit of every page that shows note content, and of refusals ---

    def _audit_denied(self, request, object_id=None):
        session = TreatmentSession.objects.filter(pk=object_id).first() if object_id else None
        clinics = user_clinic_ids(request)
        mine = session if session is not None and session.clinic_id in clinics else None
        audit_record(
            action=AuditAction.DENIED,
            clinic=mine.clinic if mine else None,
            obj=mine,
            request=request,
            via="admin",
            reason=f"{request.method} {request.path}",
        )

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            self._audit_denied(request)
            raise PermissionDenied
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            ids = [row.pk for row in changelist.result_list]
            clinics = Clinic.objects.in_bulk({row.clinic_id for row in changelist.result_list})
            for clinic_id in sorted({row.clinic_id for row in changelist.result_list}):
                audit_record(
                    action=AuditAction.LIST,
                    clinic=clinics[clinic_id],
                    request=request,
                    via="admin",
                    extra={"object_type": "treatment_sessions.treatmentsession", "ids": ids},
                )
        response.context_data = response.context_data or {}
        response.context_data["today_url"] = reverse("admin:treatment_sessions_today")
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not str(object_id).isdigit():  # the admin answers "does not exist" for a malformed id
            return super().change_view(request, object_id, form_url, extra_context)
        session = ClinicScopedAdmin.get_queryset(self, request).filter(pk=object_id).select_related("patient").first()
        if (
            session is not None
            and self.has_view_or_change_permission(request, session)
            and not request.user.is_superuser
        ):
            try:
                clinical_access_enforce(request=request, patient=session.patient, via="admin")
            except BreakGlassRequired:
                messages.error(request, ADMIN_BREAK_GLASS_MESSAGE)
                return HttpResponseRedirect(reverse("admin:treatment_sessions_treatmentsession_changelist"))
        if session is None or not self.has_view_or_change_permission(request, session):
            self._audit_denied(request, object_id)
            if session is None:
                return super().change_view(request, object_id, form_url, extra_context)
            raise PermissionDenied
        if request.method == "GET":
            audit_record(action=AuditAction.VIEW, obj=session, request=request, via="admin")
        context = {**(extra_context or {}), **self._panels(session.patient_id, before=session)}
        return super().change_view(request, object_id, form_url, context)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            self._audit_denied(request)
            raise PermissionDenied
        context = dict(extra_context or {})
        patient_id = request.GET.get("patient", "")
        if patient_id.isdigit():
            patient = Patient.objects.filter(pk=patient_id, clinic__in=user_clinic_ids(request)).first()
            if patient is not None and not request.user.is_superuser:
                try:
                    clinical_access_enforce(request=request, patient=patient, via="admin")
                except BreakGlassRequired:
                    messages.warning(request, ADMIN_BREAK_GLASS_MESSAGE)
                    patient = None
            if patient is not None:
                audit_record(
                    action=AuditAction.VIEW, obj=patient, request=request, via="admin", extra={"resource": "flags"}
                )
                context.update(self._panels(patient.pk, before=None))
        return super().add_view(request, form_url, context)

    def _panels(self, patient_id: int, *, before: TreatmentSession | None) -> dict:
        """Active flags, the previous session and the pain chart for the session page."""
        flags = sorted(
            PatientFlag.objects.active().filter(patient_id=patient_id),
            key=lambda flag: (SEVERITY_ORDER.get(flag.severity, len(SEVERITY_ORDER)), -flag.pk),
        )
        if before is not None:
            previous = selectors.last_session_before(before)
            series = selectors.pain_series(clinic=before.clinic, patient_id=patient_id)
        else:
            series = TreatmentSession.objects.filter(patient_id=patient_id).order_by("started_at", "id")
            previous = series.last()
            series = series.exclude(pain_before__isnull=True, pain_after__isnull=True)
        points = [PainPoint(f"{s.started_at:%b %d}", s.pain_before, s.pain_after) for s in series]
        return {"patient_flags": flags, "previous_session": previous, "pain_chart": pain_chart_svg(points)}

    # --- writes through the services ---

    def save_model(self, request, obj, form, change):
        if not change:
            created = services.session_start(
                clinic=obj.clinic,
                patient=obj.patient,
                practitioner=obj.practitioner,
                appointment=obj.appointment,
                started_at=obj.started_at,
                actor=request.user,
                request=request,
                via="admin",
                **{name: form.cleaned_data.get(name) for name in services.NOTE_FIELDS if name in form.cleaned_data},
            )
            obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
            obj._state.adding = False
            obj._state.db = created._state.db
            return
        if obj.is_signed:
            return  # every field is read-only; `response_change` says what happened, once
        changed = {name: form.cleaned_data[name] for name in form.changed_data if name in services.NOTE_FIELDS}
        if changed:
            services.note_update(session=obj, actor=request.user, request=request, via="admin", **changed)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        # The admin's change message reads these lists, which formset.save() would fill.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        session = form.instance
        if formset.model is Addendum:
            for entry_form in formset.forms:
                text = entry_form.cleaned_data.get("text", "") if entry_form.has_changed() else ""
                if entry_form.instance.pk is None and text.strip():
                    request.note_addenda_added = True
                    formset.new_objects.append(
                        services.note_addendum_add(
                            session=session, text=text, actor=request.user, request=request, via="admin"
                        )
                    )
            return
        for entry_form in formset.deleted_forms:
            if entry_form.instance.pk is not None:
                services.entry_delete(entry=entry_form.instance, actor=request.user, request=request, via="admin")
                formset.deleted_objects.append(entry_form.instance)
        for entry_form in formset.forms:
            if entry_form in formset.deleted_forms or not entry_form.has_changed():
                continue
            is_new = entry_form.instance.pk is None
            entry = entry_form.save(commit=False)
            entry.session = session
            points = entry_form.cleaned_data.get("trigger_points") if "trigger_points" in entry_form.fields else None
            services.entry_save(entry=entry, actor=request.user, trigger_points=points, request=request, via="admin")
            if is_new:
                formset.new_objects.append(entry)
            else:
                formset.changed_objects.append((entry, entry_form.changed_data))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        items = safety_review(context.get("inline_admin_formsets", []))
        context["safety_items"] = items
        context["safety_blocked"] = sum(item.blocked for item in items)
        context["safety_missing"] = sum(item.missing for item in items)
        context["safety_readonly"] = obj is not None and obj.is_signed
        return super().render_change_form(request, context, add, change, form_url, obj)

    def response_change(self, request, obj):
        # A signed note takes only addenda: one message saying which happened, instead of the
        # admin's "was changed successfully" next to a refusal.
        if not obj.is_signed:
            return super().response_change(request, obj)
        if getattr(request, "note_addenda_added", False):
            messages.success(request, NOTE_ADDENDUM_ADDED)
        else:
            messages.error(request, NOTE_LOCKED_REFUSAL)
        return HttpResponseRedirect(request.path)

    # --- sign, and the therapist's Today page ---

    def get_urls(self):
        own = [
            path("today/", self.admin_site.admin_view(self.today_view), name="treatment_sessions_today"),
            path(
                "<int:object_id>/sign/",
                self.admin_site.admin_view(self.sign_view),
                name="treatment_sessions_treatmentsession_sign",
            ),
        ]
        return own + super().get_urls()

    def sign_view(self, request, object_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        session = self.get_queryset(request).filter(pk=object_id).first()
        if session is None or not self.has_change_permission(request, None):
            self._audit_denied(request, object_id)
            raise PermissionDenied
        target = reverse("admin:treatment_sessions_treatmentsession_change", args=[object_id])
        try:
            services.note_sign(session=session, actor=request.user, request=request, via="admin")
        except services.NoteLockedError as error:
            messages.error(request, error.message)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                for problem in problems:
                    label = "" if field == "__all__" else f"{field.replace('_', ' ').capitalize()}: "
                    messages.error(request, f"{label}{problem}")
        else:
            messages.success(request, "Note signed and locked.")
        return HttpResponseRedirect(target)

    def today_view(self, request):
        return today.today_view(self, request)
