"""Front-desk admin: book and move appointments through the booking services (same rules as
the API), status actions, a day view per practitioner and per room, hours and exceptions."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from clinic.admin import ClinicScopedAdmin, user_clinic_ids
from clinic.models import Clinic, Practitioner, Room
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
    list_display = [
        "start", "end", "patient", "practitioner", "service", "room", "status", "confirmation", "late_cancellation",
    ]  # fmt: skip
    list_filter = ["status", "practitioner", "room"]
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
        day = path("day/", self.admin_site.admin_view(self.day_view), name="treatment_sessions_appointment_day")
        return [day, *super().get_urls()]

    def day_view(self, request):
        """One day's schedule, a column per practitioner and per room, in the clinic's zone."""
        clinics = (
            Clinic.objects.all()
            if request.user.is_superuser
            else Clinic.objects.filter(id__in=user_clinic_ids(request))
        )
        clinic = clinics.filter(slug=request.GET.get("clinic")).first() or clinics.order_by("id").first()
        if clinic is None:
            return render(request, "admin/treatment_sessions/day.html", {**self.admin_site.each_context(request)})
        tz = clinic.tz
        try:
            date = dt.date.fromisoformat(request.GET.get("date", ""))
        except ValueError:
            date = timezone.now().astimezone(tz).date()
        start = dt.datetime.combine(date, dt.time(0), tzinfo=tz)
        end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
        appointments = list(
            Appointment.objects.active()
            .filter(clinic=clinic, start__gte=start, start__lt=end)
            .select_related("patient", "practitioner", "service", "room")
            .order_by("start")
        )
        by_practitioner = [
            (p, [a for a in appointments if a.practitioner_id == p.pk])
            for p in Practitioner.objects.filter(clinic=clinic, is_active=True)
        ]
        by_room = [
            (r, [a for a in appointments if a.room_id == r.pk])
            for r in Room.objects.filter(clinic=clinic, is_active=True)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"{clinic.name}: {date:%A %d %B %Y}",
            "clinic": clinic,
            "clinics": clinics,
            "date": date,
            "previous": date - dt.timedelta(days=1),
            "next": date + dt.timedelta(days=1),
            "tz": clinic.time_zone,
            "columns": [("Practitioners", by_practitioner), ("Rooms", by_room)],
            "opts": self.model._meta,
        }
        with timezone.override(tz):
            return render(request, "admin/treatment_sessions/day.html", context)


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
