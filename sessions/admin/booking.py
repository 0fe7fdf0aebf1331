"""Front-desk admin: book and move appointments through the booking services (same rules as
the API), status actions, hours and exceptions. The day and week calendar is `calendar`."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import path, reverse

from clinic.admin import ClinicScopedAdmin
from sessions import services
from sessions.models import (
    Appointment,
    AppointmentChange,
    AvailabilityException,
    CalendarFeed,
    WaitlistEntry,
    WaitlistOffer,
    WorkingHours,
)


class AppointmentForm(forms.ModelForm):
    """Booking (add) and moving (change) go through the services inside `clean()`, so a
    clash or a time outside working hours comes back as a form error, not a 500."""

    hours_override = forms.BooleanField(required=False, help_text="Book outside working hours.")
    hours_override_reason = forms.CharField(required=False, max_length=200)

    class Meta:
        model = Appointment
        fields = ["clinic", "patient", "practitioner", "service", "room", "start", "notes"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        if self.instance.pk:
            for name in ("clinic", "patient", "service"):
                self.fields[name].disabled = True

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        by = self.request.user if self.request else None
        override = data.get("hours_override")
        if override and not (by and by.has_perm("treatment_sessions.override_hours_appointment")):
            raise ValidationError({"hours_override": "You may not book outside working hours."})
        try:
            if self.instance.pk is None:
                self.instance = services.appointment_book(
                    clinic=data["clinic"],
                    patient=data["patient"],
                    practitioner=data["practitioner"],
                    service=data["service"],
                    start=data["start"],
                    room=data.get("room"),
                    notes=data.get("notes", ""),
                    booked_by=by,
                    hours_override=bool(override),
                    hours_override_reason=data.get("hours_override_reason", ""),
                )
            elif {"start", "practitioner", "room"} & set(self.changed_data):
                self.instance = services.appointment_reschedule(
                    appointment=self.instance,
                    start=data["start"],
                    practitioner=data["practitioner"],
                    room=data.get("room"),
                    by=by,
                    reason="moved in the admin",
                    hours_override=bool(override),
                    hours_override_reason=data.get("hours_override_reason", ""),
                )
            elif "notes" in self.changed_data:
                Appointment.objects.filter(pk=self.instance.pk).update(notes=data["notes"])
        except services.BookingConflictError as exc:
            raise ValidationError(exc.message(data["clinic"].tz)) from exc
        except services.InvalidTransitionError as exc:
            raise ValidationError(str(exc)) from exc
        return data

    def _post_clean(self):
        # The service validated and saved the row; the model form must not overwrite it.
        pass


class AppointmentChangeInline(admin.TabularInline):
    model = AppointmentChange
    extra = 0
    can_delete = False
    fields = ["at", "kind", "by", "old_start", "new_start", "old_status", "new_status", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


def _status_action(fn, label):
    def run(modeladmin, request, queryset):
        done = 0
        for appointment in queryset:
            try:
                fn(appointment=appointment, by=request.user)
                done += 1
            except (services.InvalidTransitionError, ValidationError) as exc:
                messages.warning(request, f"{appointment}: {exc}")
        if done:
            messages.success(request, f"{label}: {done} appointment(s).")

    run.short_description = label
    run.__name__ = fn.__name__
    return run


@admin.register(Appointment)
class AppointmentAdmin(ClinicScopedAdmin):
    form = AppointmentForm
    # Start and end in one column, in clinic time: the list fits a 1366 px screen.
    list_display = ["when", "patient", "practitioner", "service", "room", "status", "confirmation"]
    list_time_spans = {"when": ("start", "end", "When")}
    list_filter = ["status", "practitioner", "room", "late_cancellation"]
    list_select_related = ["patient", "practitioner", "service", "room"]
    date_hierarchy = "start"
    raw_id_fields = ["patient"]
    inlines = [AppointmentChangeInline]
    actions = [
        _status_action(services.appointment_confirm, "Confirm"),
        _status_action(services.appointment_check_in, "Check in"),
        _status_action(services.appointment_complete, "Complete"),
        _status_action(services.appointment_no_show, "Mark no-show"),
        _status_action(services.appointment_cancel, "Cancel (by the clinic)"),
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class RequestForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, request=request, **kw)

        return RequestForm

    def get_fields(self, request, obj=None):
        shown = ["status_line", "confirmation"] if obj is not None else []
        return [*shown, "clinic", "patient", "practitioner", "service", "room", "start", "notes"] + [
            "hours_override",
            "hours_override_reason",
        ]

    def get_readonly_fields(self, request, obj=None):
        return ["status_line", "confirmation"] if obj is not None else []

    @admin.display(description="Status")
    def status_line(self, obj):
        return obj.get_status_display()

    @admin.display(description="Confirmation")
    def confirmation(self, obj):
        # Who confirmed and how (desk, email link, SMS reply), in the clinic's time.
        return obj.confirmation_text or "Not confirmed"

    def save_model(self, request, obj, form, change):
        # Saved by the booking service in the form's clean().
        pass

    def has_delete_permission(self, request, obj=None):
        # Appointments are cancelled, never deleted: the history and late-cancellation record stay.
        return False

    def get_urls(self):
        # The old plain day view lives on as the calendar's day view.
        day = path("day/", self.admin_site.admin_view(self.day_view), name="treatment_sessions_appointment_day")
        return [day, *super().get_urls()]

    def day_view(self, request):
        return HttpResponseRedirect(reverse("admin:calendar") + ("?" + request.GET.urlencode() if request.GET else ""))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        if object_id:
            extra_context["calendar_url"] = reverse("admin:calendar_appointment", args=[object_id])
        return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "calendar_url": reverse("admin:calendar")})


@admin.register(WorkingHours)
class WorkingHoursAdmin(ClinicScopedAdmin):
    list_display = ["practitioner", "weekday", "start_time", "end_time", "location"]
    list_filter = ["practitioner", "weekday", "location"]


@admin.register(AvailabilityException)
class AvailabilityExceptionAdmin(ClinicScopedAdmin):
    list_display = ["practitioner", "date", "kind", "start_time", "end_time", "location", "reason"]
    list_filter = ["kind", "practitioner"]
    date_hierarchy = "date"


@admin.register(CalendarFeed)
class CalendarFeedAdmin(ClinicScopedAdmin):
    list_display = ["practitioner", "prefix", "created_at", "revoked_at"]
    readonly_fields = ["clinic", "practitioner", "prefix", "digest", "created_by", "created_at"]
    fields = [*readonly_fields, "revoked_at"]

    def has_add_permission(self, request):
        # Feeds are created through the API, which shows the secret URL once.
        return False


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ClinicScopedAdmin):
    list_display = ["patient", "service", "practitioner", "window_start", "window_end", "status", "created_at"]
    list_filter = ["status", "service"]
    raw_id_fields = ["patient", "appointment"]


@admin.register(WaitlistOffer)
class WaitlistOfferAdmin(ClinicScopedAdmin):
    list_display = ["entry", "practitioner", "start", "status", "expires_at"]
    list_filter = ["status"]
    readonly_fields = [
        "entry",
        "practitioner",
        "room",
        "start",
        "freed_by",
        "appointment",
        "created_at",
        "responded_at",
    ]
