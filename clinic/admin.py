"""Admin for clinic-wide models, and `ClinicScopedAdmin`, the base every app's admin uses.

Staff see only rows of the clinics they are members of; foreign-key choices are
limited the same way, so nobody can pick another clinic's patient or room.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminSplitDateTime
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import formats, timezone
from django.utils.html import format_html

from clinic.messaging.outbox import message_resend
from clinic.messaging.preview import message_explained, message_preview
from clinic.models import (
    ApiKey,
    AuditEvent,
    BreakGlassAccess,
    Clinic,
    Location,
    Membership,
    Practitioner,
    Room,
    Service,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from clinic.security.access import break_glass_review
from clinic.services import membership_set
from clinic.webhooks.delivery import webhook_endpoint_update


def user_clinic_ids(request) -> list[int]:
    if not hasattr(request, "_clinic_ids"):
        request._clinic_ids = list(
            Membership.objects.filter(user=request.user, is_active=True).values_list("clinic_id", flat=True)
        )
    return request._clinic_ids


class ReadOnlyAdminMixin:
    """Rows only services write (audit events, intake submissions, published questionnaires):
    the admin shows them and never adds, changes or deletes one."""

    def get_readonly_fields(self, request, obj=None):
        declared = super().get_readonly_fields(request, obj)
        return list(dict.fromkeys([*declared, *(f.name for f in self.model._meta.fields)]))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ClinicDateTimeField(forms.SplitDateTimeField):
    """A date and time typed in the active (clinic's) zone; a wall-clock time the DST change
    skips or repeats is a field error naming the zone, never a silent shift."""

    def compress(self, data_list):
        try:
            return super().compress(data_list)
        except ValidationError as error:
            if error.code != "ambiguous_timezone":
                raise
            date, time = data_list
            zone = timezone.get_current_timezone()
            typed = f"{date:%Y-%m-%d} {time:%H:%M}"
            naive = dt.datetime.combine(date, time)
            gap = naive.replace(tzinfo=zone, fold=0).utcoffset() < naive.replace(tzinfo=zone, fold=1).utcoffset()
            what = "does not exist (the clocks go forward)" if gap else "happens twice (the clocks go back)"
            raise ValidationError(
                f"{typed} {what} in {zone.key}; choose a time outside the change.", code="ambiguous_timezone"
            ) from error


def _clinic_time_column(name: str, field, zones: dict, name_zone: bool):
    """A list column showing a row's date-time in the zone of the row's clinic."""

    def column(obj):
        value = getattr(obj, name)
        if value is None:
            return None
        local = timezone.localtime(value, zones.get(obj.clinic_id) or timezone.get_current_timezone())
        shown = formats.localize(timezone.make_naive(local, local.tzinfo))
        return f"{shown} {local.tzname()}" if name_zone else shown

    column.short_description = field.verbose_name
    column.admin_order_field = name
    column.__name__ = name
    return column


class ClinicScopedAdmin(admin.ModelAdmin):
    """Rows of the user's clinics, times in the clinic's zone (see
    `clinic.security.middleware.ClinicTimeZoneMiddleware`): a change page in the zone of the
    object's clinic (an add page, of the clinic its form or link names), a list's date-time
    columns each row in its own clinic's zone, named when the user's clinics differ in zone."""

    clinic_field = "clinic"
    formfield_overrides = {
        **admin.ModelAdmin.formfield_overrides,
        models.DateTimeField: {"form_class": ClinicDateTimeField, "widget": AdminSplitDateTime},
    }

    def _clinic_zones(self, request) -> dict:
        if not hasattr(request, "_clinic_zones"):
            clinics = Clinic.objects.all()
            if not request.user.is_superuser:
                clinics = clinics.filter(id__in=user_clinic_ids(request))
            request._clinic_zones = {c.pk: c.tz for c in clinics.only("id", "time_zone")}
        return request._clinic_zones

    def get_list_display(self, request):
        names = super().get_list_display(request)
        if self.clinic_field != "clinic":
            return names
        zones = self._clinic_zones(request)
        name_zone = len({z.key for z in zones.values()}) > 1
        fixed_links = self.list_display_links or ()
        shown = []
        for name in names:
            field = (
                next((f for f in self.model._meta.fields if f.name == name), None) if isinstance(name, str) else None
            )
            if isinstance(field, models.DateTimeField) and name not in fixed_links:
                name = _clinic_time_column(name, field, zones, name_zone)
            shown.append(name)
        return shown

    def _object_clinic_id(self, request, object_id):
        if self.clinic_field != "clinic":
            return None
        if object_id is not None:
            try:
                rows = self.get_queryset(request).filter(pk=unquote(object_id))
                return rows.values_list("clinic_id", flat=True).first()
            except (ValueError, ValidationError):
                return None
        # An add page: the clinic in the posted form, or the one its link prefills (?clinic=<id>).
        chosen = (request.POST if request.method == "POST" else request.GET).get("clinic", "")
        return int(chosen) if chosen.isdigit() else None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        zone = self._clinic_zones(request).get(self._object_clinic_id(request, object_id))
        if zone is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with timezone.override(zone):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        return response

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.clinic_field}__in": user_clinic_ids(request)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if not request.user.is_superuser:
            if related is Clinic:
                kwargs["queryset"] = Clinic.objects.filter(id__in=user_clinic_ids(request))
            elif any(f.name == "clinic" for f in related._meta.get_fields()):
                kwargs["queryset"] = related._default_manager.filter(clinic__in=user_clinic_ids(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if not request.user.is_superuser and any(f.name == "clinic" for f in related._meta.get_fields()):
            kwargs["queryset"] = related._default_manager.filter(clinic__in=user_clinic_ids(request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "first_name", "last_name", "email", "is_staff", "is_active"]


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(id__in=user_clinic_ids(request))


@admin.register(Location)
class LocationAdmin(ClinicScopedAdmin):
    list_display = ["name", "clinic", "city", "is_active"]
    list_filter = ["is_active"]


@admin.register(Room)
class RoomAdmin(ClinicScopedAdmin):
    list_display = ["name", "clinic", "location", "is_active"]
    filter_horizontal = ["services"]


@admin.register(Service)
class ServiceAdmin(ClinicScopedAdmin):
    list_display = ["name", "clinic", "modality", "duration_minutes", "buffer_minutes", "price", "is_active"]
    list_filter = ["modality", "is_active"]


@admin.register(Practitioner)
class PractitionerAdmin(ClinicScopedAdmin):
    list_display = ["display_name", "clinic", "registration_number", "is_active"]
    filter_horizontal = ["modalities", "services"]


@admin.register(Membership)
class MembershipAdmin(ClinicScopedAdmin):
    list_display = ["user", "clinic", "role", "is_active"]
    list_filter = ["role", "is_active"]

    def save_model(self, request, obj, form, change):
        membership_set(clinic=obj.clinic, user=obj.user, role=obj.role, is_active=obj.is_active)


@admin.register(ApiKey)
class ApiKeyAdmin(ClinicScopedAdmin):
    list_display = ["name", "prefix", "clinic", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "digest", "created_by", "created_at", "last_used_at"]
    fields = ["clinic", "name", "scopes", "prefix", "digest", "created_by", "created_at", "last_used_at", "revoked_at"]

    def has_add_permission(self, request):
        # Keys are created with `manage.py create_api_key` or the API, which show the key once.
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, ClinicScopedAdmin):
    """Owners browse and filter the trail; nobody adds, edits or deletes it from the app."""

    list_display = [
        "occurred_at",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "patient_id",
        "via",
        "ip_address",
    ]
    list_filter = ["action", "via", "object_type"]
    search_fields = ["actor_label", "object_id", "request_id"]
    date_hierarchy = "occurred_at"
    list_select_related = ["clinic"]


@admin.register(BreakGlassAccess)
class BreakGlassAccessAdmin(ClinicScopedAdmin):
    """The owner's review list of emergency access; opened through the API or the record's page."""

    list_display = ["opened_at", "user", "patient", "reason", "expires_at", "reviewed_at", "reviewed_by"]
    list_filter = [("reviewed_at", admin.EmptyFieldListFilter)]
    actions = ["mark_reviewed"]
    list_select_related = ["user", "patient", "reviewed_by"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Mark as reviewed")
    def mark_reviewed(self, request, queryset):
        from django.core.exceptions import PermissionDenied, ValidationError

        done = 0
        for access in queryset.filter(reviewed_at__isnull=True):
            try:
                break_glass_review(access=access, reviewer=request.user)
                done += 1
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, str(exc), level="error")
                return
        self.message_user(request, f"{done} access(es) marked reviewed.")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ClinicScopedAdmin):
    """Endpoints are created through the API (which shows the secret once); here they are
    inspected, switched off or back on."""

    list_display = ["url", "clinic", "is_active", "failing_since", "disabled_at"]
    list_filter = ["is_active"]
    fields = ["clinic", "url", "description", "events", "is_active", "failing_since", "disabled_at", "disabled_reason"]
    readonly_fields = ["clinic", "events", "failing_since", "disabled_at", "disabled_reason"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        webhook_endpoint_update(
            endpoint=obj, url=obj.url, description=obj.description, events=obj.events, is_active=obj.is_active
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ClinicScopedAdmin):
    """The delivery log, read-only."""

    list_display = ["event", "endpoint", "status", "attempts", "response_status", "next_attempt_at", "delivered_at"]
    list_filter = ["status"]
    list_select_related = ["event", "endpoint"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- messaging ------------------------------------------------------------------------

from clinic.models import (  # noqa: E402 - kept with the section it serves
    Message,
    MessageStatus,
    MessageTemplate,
    ReminderPolicy,
    ServiceReminderPolicy,
)


@admin.register(Message)
class MessageAdmin(ClinicScopedAdmin):
    """The message log. Rows are written by the triggers; staff only look and resend."""

    list_display = ["due_at", "kind", "channel", "patient", "to_user", "status", "why", "attempts", "sent_at"]
    list_filter = ["status", "kind", "channel"]
    search_fields = ["patient__family_name", "patient__given_name", "recipient", "provider_message_id"]
    raw_id_fields = ["patient"]
    date_hierarchy = "due_at"
    list_select_related = ["patient", "to_user", "clinic"]
    actions = ["resend"]

    def get_readonly_fields(self, request, obj=None):
        return ["why", "preview", *[f.name for f in self.model._meta.fields]]

    def get_fields(self, request, obj=None):
        return ["why", "preview", *[f.name for f in self.model._meta.fields if f.name not in ("subject", "body")]]

    @admin.display(description="Why")
    def why(self, obj):
        return message_explained(obj)

    @admin.display(description="What the recipient gets")
    def preview(self, obj):
        subject, body, attachments = message_preview(obj)
        return format_html(
            '<div class="message-preview">{}<pre style="white-space: pre-wrap; max-width: 60em">{}</pre>{}</div>',
            format_html("<p><strong>Subject:</strong> {}</p>", subject) if subject else "",
            body,
            format_html("<p><strong>Attached:</strong> {}</p>", ", ".join(attachments)) if attachments else "",
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Send the selected failed or skipped messages again", permissions=["change"])
    def resend(self, request, queryset):
        from django.contrib import messages as flash
        from django.core.exceptions import ValidationError

        done = 0
        for message in queryset.filter(status__in=[MessageStatus.FAILED, MessageStatus.SKIPPED]):
            try:
                message_resend(message=message)
            except ValidationError:
                continue
            done += 1
        skipped = queryset.count() - done
        self.message_user(request, f"{done} message(s) queued again; {skipped} left as they were.", flash.SUCCESS)


@admin.register(ReminderPolicy)
class ReminderPolicyAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "lead_times", "quiet_hours_start", "quiet_hours_end", "intake_nudge_hours"]


@admin.register(ServiceReminderPolicy)
class ServiceReminderPolicyAdmin(ClinicScopedAdmin):
    list_display = ["service", "clinic", "lead_times"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ClinicScopedAdmin):
    list_display = ["kind", "channel", "clinic", "updated_at"]
    list_filter = ["kind", "channel"]
