"""Messaging in the admin: the message log (look and resend), and the owner's settings as
ordinary form fields: reminder lead times, quiet hours and message templates, each with a
preview of the message as a patient would read it (nothing saved until "Save")."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin
from django.contrib import messages as flash
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.template import Context, Template, TemplateSyntaxError
from django.utils import timezone
from django.utils.html import format_html

from clinic.admin import ClinicScopedAdmin
from clinic.messaging.outbox import message_resend, quiet_hours_adjust, reminder_due
from clinic.messaging.preview import message_explained
from clinic.messaging.preview import message_preview as outgoing_preview
from clinic.messaging.render import DEFAULT_TEMPLATES, when_text
from clinic.models import (
    Clinic,
    Message,
    MessageChannel,
    MessageKind,
    MessageStatus,
    MessageTemplate,
    Practitioner,
    ReminderPolicy,
    ServiceReminderPolicy,
)
from clinic.models.messaging import TEXT_ENGINE, default_lead_times

LEAD_TIME_ROWS = 4
PREVIEW_BUTTON = "_preview"
PREVIEW_ONLY = "preview_only"


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
        subject, body, attachments = outgoing_preview(obj)
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
        done = 0
        for message in queryset.filter(status__in=[MessageStatus.FAILED, MessageStatus.SKIPPED]):
            try:
                message_resend(message=message)
            except ValidationError:
                continue
            done += 1
        skipped = queryset.count() - done
        self.message_user(request, f"{done} message(s) queued again; {skipped} left as they were.", flash.SUCCESS)


# --- previews: the message as a patient would read it ------------------------------------


def sample_appointment(clinic: Clinic) -> dt.datetime:
    """An example visit for previews: next Tuesday at 10:00 on the clinic's wall clock."""
    today = timezone.localtime(timezone.now(), clinic.tz).date()
    tuesday = today + dt.timedelta(days=(1 - today.weekday()) % 7 or 7)
    return dt.datetime.combine(tuesday, dt.time(10, 0), tzinfo=clinic.tz)


def sample_context(clinic: Clinic, *, channel: str, start: dt.datetime) -> dict:
    """The keys of `clinic.messaging.render.message_context`, filled with an example patient."""
    when, date, clock = when_text(start, clinic.tz)
    practitioner = Practitioner.objects.filter(clinic=clinic, is_active=True).order_by("id").first()
    return {
        "patient_name": "Alex",
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_email": clinic.email,
        "practitioner_name": practitioner.display_name if practitioner else "your therapist",
        "appointment_when": when,
        "appointment_date": date,
        "appointment_time": clock,
        "link": "https://clinic.example/intake/example-link/",
        "expires_when": when_text(start - dt.timedelta(hours=2), clinic.tz)[0],
        "unsubscribe_url": "https://clinic.example/unsubscribe/example/" if channel == MessageChannel.EMAIL else "",
    }


def message_preview(clinic: Clinic, *, kind: str, channel: str, subject: str | None = None, body: str | None = None):
    """(subject, body) of `kind` on `channel` for an example patient: the given template text,
    else the clinic's saved template, else the default one."""
    if body is None:
        saved = MessageTemplate.objects.filter(clinic=clinic, kind=kind, channel=channel).first()
        if saved is not None:
            subject, body = saved.subject, saved.body
    if body is None:
        body = (DEFAULT_TEMPLATES / f"{kind}.{channel}.txt").read_text()
        subject = (DEFAULT_TEMPLATES / f"{kind}.subject.txt").read_text() if channel == MessageChannel.EMAIL else ""
    context = Context(sample_context(clinic, channel=channel, start=sample_appointment(clinic)), autoescape=False)
    shown_subject = Template(subject or "", engine=TEXT_ENGINE).render(context) if subject else ""
    return " ".join(shown_subject.split())[:200], Template(body, engine=TEXT_ENGINE).render(context).strip()


class PreviewAdminMixin:
    """A "Preview" button next to "Save": the form is checked and shown again with the preview
    of the message, and nothing is saved. The form's clean() sets `form.preview` and, when the
    button was pressed, stops the save with a `preview_only` error that is not shown."""

    change_form_template = "admin/clinic/settings_change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The lead-time rows are the form's own fields (added in its __init__), not the model's.
        model_fields = {f.name for f in self.model._meta.get_fields()}
        if kwargs.get("fields"):
            kwargs["fields"] = [name for name in kwargs["fields"] if name in model_fields]
        return super().get_form(request, obj, change=change, **kwargs)

    def render_change_form(self, request, context, *args, **kwargs):
        form = context["adminform"].form
        errors = getattr(form, "_errors", None) or {}
        stopped = [e for e in errors.get(NON_FIELD_ERRORS, []) if e == PREVIEW_MESSAGE]
        if stopped and len(errors) == 1 and len(errors[NON_FIELD_ERRORS]) == 1:
            del errors[NON_FIELD_ERRORS]
            context["errors"] = []
            context["title"] = f"Preview: {context.get('title', '')}"
            flash.info(request, "Preview only: nothing was saved. Press Save to keep these settings.")
        context["preview_button"] = PREVIEW_BUTTON
        context["form_preview"] = getattr(form, "preview", None)
        context.setdefault("saved_preview", None)
        return super().render_change_form(request, context, *args, **kwargs)


PREVIEW_MESSAGE = "Preview only: nothing was saved."


def _stop_for_preview(form) -> None:
    if PREVIEW_BUTTON in form.data:
        raise ValidationError(PREVIEW_MESSAGE, code=PREVIEW_ONLY)


# --- reminder lead times as fields ----------------------------------------------------------


class LeadTimesForm(forms.ModelForm):
    """Lead times as rows of "hours before" and "channel" instead of the JSON list."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = list(self.instance.lead_times or []) if self.instance.pk else default_lead_times()
        for index in range(LEAD_TIME_ROWS):
            entry = current[index] if index < len(current) else {}
            number = index + 1
            self.fields[f"lead_{number}_hours"] = forms.IntegerField(
                label=f"Reminder {number}: hours before",
                required=False,
                min_value=1,
                max_value=720,
                initial=entry.get("hours"),
                help_text=(
                    "1 to 720 (30 days); whole days go out at the same clock time. Empty for none."
                    if number == 1
                    else ""
                ),
            )
            self.fields[f"lead_{number}_channel"] = forms.ChoiceField(
                label=f"Reminder {number}: by",
                required=False,
                choices=[("", "---------"), *MessageChannel.choices],
                initial=entry.get("channel", ""),
            )

    def clean(self):
        data = super().clean()
        lead_times, seen = [], {}
        for index in range(1, LEAD_TIME_ROWS + 1):
            hours, channel = data.get(f"lead_{index}_hours"), data.get(f"lead_{index}_channel")
            if f"lead_{index}_hours" in self.errors:
                continue
            if hours is None and not channel:
                continue
            if hours is None:
                self.add_error(f"lead_{index}_hours", "Enter how many hours before the visit, or clear the channel.")
            elif not channel:
                self.add_error(f"lead_{index}_channel", "Choose email or SMS for this reminder.")
            elif (hours, channel) in seen:
                self.add_error(
                    f"lead_{index}_hours", f"Same as reminder {seen[(hours, channel)]}: {hours} h by {channel}."
                )
            else:
                seen[(hours, channel)] = index
                lead_times.append({"hours": hours, "channel": channel})
        lead_times.sort(key=lambda entry: -entry["hours"])
        self.instance.lead_times = lead_times
        return data

    @classmethod
    def lead_fieldset(cls) -> list[tuple[str, str]]:
        # One line per reminder: hours and channel side by side.
        return [(f"lead_{i}_hours", f"lead_{i}_channel") for i in range(1, LEAD_TIME_ROWS + 1)]


def lead_times_preview(clinic: Clinic, policy: ReminderPolicy, lead_times: list[dict]) -> dict:
    """When each reminder of the example visit goes out (after quiet hours) and what it says."""
    start = sample_appointment(clinic)
    tz = clinic.tz
    schedule = []
    for entry in lead_times:
        planned = reminder_due(start, hours=entry["hours"], tz=tz)
        due = quiet_hours_adjust(planned, policy=policy, tz=tz, cut_off=start)
        local = timezone.localtime(due, tz)
        schedule.append(
            {
                "hours": entry["hours"],
                "channel": MessageChannel(entry["channel"]).label,
                "when": f"{when_text(due, tz)[0]} {local.tzname()}",
                "moved": due != planned,
            }
        )
    messages = []
    for channel in sorted({entry["channel"] for entry in lead_times}):
        subject, body = message_preview(clinic, kind=MessageKind.APPOINTMENT_REMINDER, channel=channel)
        messages.append({"channel": MessageChannel(channel).label, "subject": subject, "body": body})
    return {
        "visit": f"{when_text(start, tz)[0]} {timezone.localtime(start, tz).tzname()} ({tz.key})",
        "schedule": schedule,
        "messages": messages,
    }


class ReminderPolicyForm(LeadTimesForm):
    class Meta:
        model = ReminderPolicy
        fields = [
            "clinic", "quiet_hours_start", "quiet_hours_end", "confirmations_immediate",
            "intake_nudge_hours", "followup_second_nudge_days",
        ]  # fmt: skip

    def clean(self):
        data = super().clean()
        start, end = data.get("quiet_hours_start"), data.get("quiet_hours_end")
        if (start is None) != (end is None) and not {"quiet_hours_start", "quiet_hours_end"} & set(self.errors):
            empty = "quiet_hours_end" if end is None else "quiet_hours_start"
            self.add_error(empty, "Set both ends of the quiet hours, or clear both for none.")
        clinic = data.get("clinic") or (self.instance.clinic if self.instance.clinic_id else None)
        if clinic is not None and not self.errors:
            self.instance.quiet_hours_start, self.instance.quiet_hours_end = start, end
            self.preview = lead_times_preview(clinic, self.instance, self.instance.lead_times)
            _stop_for_preview(self)
        return data


@admin.register(ReminderPolicy)
class ReminderPolicyAdmin(PreviewAdminMixin, ClinicScopedAdmin):
    form = ReminderPolicyForm
    list_display = ["clinic", "lead_times_shown", "quiet_hours_start", "quiet_hours_end", "intake_nudge_hours"]

    @admin.display(description="Reminders")
    def lead_times_shown(self, policy):
        return ", ".join(f"{e['hours']} h by {e['channel']}" for e in policy.lead_times) or "none"

    def get_fieldsets(self, request, obj=None):
        form = self.form
        return [
            (None, {"fields": ["clinic"]}),
            ("Appointment reminders", {"fields": form.lead_fieldset()}),
            (
                "Quiet hours (clinic time)",
                {"fields": ["quiet_hours_start", "quiet_hours_end", "confirmations_immediate"]},
            ),
            ("Nudges", {"fields": ["intake_nudge_hours", "followup_second_nudge_days"]}),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        policy = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if policy is not None:
            context["saved_preview"] = lead_times_preview(policy.clinic, policy, policy.lead_times)
        return super().change_view(request, object_id, form_url, context)


class ServiceReminderPolicyForm(LeadTimesForm):
    class Meta:
        model = ServiceReminderPolicy
        fields = ["clinic", "service"]

    def clean(self):
        data = super().clean()
        clinic = data.get("clinic") or (self.instance.clinic if self.instance.clinic_id else None)
        if clinic is not None and not self.errors:
            from_clinic = ReminderPolicy.objects.filter(clinic=clinic).first() or ReminderPolicy(clinic=clinic)
            self.preview = lead_times_preview(clinic, from_clinic, self.instance.lead_times)
            _stop_for_preview(self)
        return data


@admin.register(ServiceReminderPolicy)
class ServiceReminderPolicyAdmin(PreviewAdminMixin, ClinicScopedAdmin):
    form = ServiceReminderPolicyForm
    list_display = ["service", "clinic", "lead_times_shown"]
    lead_times_shown = ReminderPolicyAdmin.lead_times_shown

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["clinic", "service"]}),
            ("Reminders for this service", {"fields": self.form.lead_fieldset()}),
        ]


# --- templates ------------------------------------------------------------------------------


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["clinic", "kind", "channel", "subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 10, "cols": 80})}
        help_texts = {
            "body": "Placeholders: {{ patient_name }}, {{ clinic_name }}, {{ clinic_phone }}, {{ clinic_email }}, "
            "{{ practitioner_name }}, {{ appointment_when }}, {{ appointment_date }}, {{ appointment_time }}, "
            "{{ link }}, {{ expires_when }}, {{ unsubscribe_url }} (email).",
        }

    def clean(self):
        data = super().clean()
        clinic, kind, channel = data.get("clinic"), data.get("kind"), data.get("channel")
        if data.get("subject") and channel == MessageChannel.SMS:
            self.add_error("subject", "Text messages have no subject; leave it empty.")
        if self.errors or clinic is None:
            return data
        try:
            self.preview = {
                "messages": [
                    dict(
                        zip(
                            ("subject", "body"),
                            message_preview(
                                clinic, kind=kind, channel=channel, subject=data.get("subject", ""), body=data["body"]
                            ),
                            strict=True,
                        ),
                        channel=MessageChannel(channel).label,
                    )
                ]
            }
        except TemplateSyntaxError as exc:
            self.add_error("body", f"Template error: {exc}")
            return data
        _stop_for_preview(self)
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(PreviewAdminMixin, ClinicScopedAdmin):
    form = MessageTemplateForm
    list_display = ["kind", "channel", "clinic", "updated_at"]
    list_filter = ["kind", "channel"]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        template = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if template is not None:
            try:
                subject, body = message_preview(
                    template.clinic,
                    kind=template.kind,
                    channel=template.channel,
                    subject=template.subject,
                    body=template.body,
                )
            except TemplateSyntaxError:
                pass
            else:
                context["saved_preview"] = {
                    "messages": [{"channel": template.get_channel_display(), "subject": subject, "body": body}]
                }
        return super().change_view(request, object_id, form_url, context)
