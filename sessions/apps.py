from django.apps import AppConfig

from clinic.security.roles import ALL_ACTIONS

NOTE_PERMISSIONS = {
    "treatmentsession": ALL_ACTIONS,
    "artentry": ALL_ACTIONS,
    "massageentry": ALL_ACTIONS,
    "acupunctureentry": ALL_ACTIONS,
    "homecareentry": ALL_ACTIONS,
    "addendum": ("view", "add"),
}


class SessionsConfig(AppConfig):
    name = "sessions"
    # `sessions` is taken by django.contrib.sessions; this label names our tables
    # and migrations and must never change.
    label = "treatment_sessions"
    verbose_name = "Appointments and treatment sessions"
    default_auto_field = "django.db.models.BigAutoField"

    # Front desk books and moves (and may override working hours); owners also set hours
    # and feeds; therapists see the schedule, manage their own feeds and exceptions.
    # Note content (sessions, entries, addenda) is for clinical roles only: receptionists
    # learn that a visit happened from the appointment and the API's session summary.
    role_permissions = {
        "owner": {"*": ALL_ACTIONS, "appointment": (*ALL_ACTIONS, "override_hours")},
        "therapist": {
            **NOTE_PERMISSIONS,
            "appointment": ("view", "add", "change"),
            "appointmentseries": ("view",),
            "appointmentchange": ("view",),
            "workinghours": ("view",),
            "availabilityexception": ("view", "add", "change", "delete"),
            "calendarfeed": ("view", "add", "change"),
            "waitlistentry": ("view",),
            "waitlistoffer": ("view",),
        },
        "receptionist": {
            "appointment": ("view", "add", "change", "override_hours"),
            "appointmentseries": ("view", "add"),
            "appointmentchange": ("view",),
            "workinghours": ("view",),
            "availabilityexception": ("view", "add", "change", "delete"),
            "waitlistentry": ("view", "add", "change"),
            "waitlistoffer": ("view", "change"),
        },
    }

    def ready(self) -> None:
        from clinic.messaging.inbound import sms_reply_handler_register
        from clinic.messaging.outbox import validity_check_register
        from clinic.models import MessageKind
        from clinic.security.access import care_relationship_register
        from patients.csv_io import csv_export_register, ndjson_export_register
        from patients.privacy import record_part_register
        from sessions import messages, privacy, selectors
        from sessions.csv_io import appointments_export_csv, appointments_export_ndjson
        from sessions.services.confirmation import sms_appointment_reply
        from sessions.services.waitlist import waitlist_offer_still_open

        messages.register()
        care_relationship_register(selectors.care_relationship_q)
        record_part_register(privacy.PART)
        csv_export_register("appointments", appointments_export_csv)
        ndjson_export_register("appointments", appointments_export_ndjson)
        validity_check_register(MessageKind.WAITLIST_OFFER, waitlist_offer_still_open)
        sms_reply_handler_register(sms_appointment_reply)

    def seed_demo(self, stdout):
        from sessions.demo import seed_appointments
        from sessions.demo_notes import seed_notes

        seed_appointments(stdout)
        return seed_notes(stdout)
