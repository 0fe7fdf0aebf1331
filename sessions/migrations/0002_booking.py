"""Booking: availability, series, history, calendar feeds, waitlist, and the no-overlap
exclusion constraints (PostgreSQL; btree_gist lets `practitioner =` share a GiST index with
the time range). Existing appointments get `blocked_until` = end + their service's buffer
before the column becomes required."""

import datetime

import django.contrib.postgres.fields.ranges
import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations, models
from django.db.models import F

import clinic.models.constraints
import sessions.models


def fill_booking_fields(apps, schema_editor):
    Appointment = apps.get_model("treatment_sessions", "Appointment")
    for appointment in Appointment.objects.select_related("service").iterator():
        appointment.blocked_until = appointment.end + datetime.timedelta(minutes=appointment.service.buffer_minutes)
        appointment.save(update_fields=["blocked_until"])
    Appointment.objects.filter(status="cancelled", cancelled_at__isnull=True).update(cancelled_at=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0005_booking_settings"),
        ("patients", "0001_initial"),
        ("treatment_sessions", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        BtreeGistExtension(),
        migrations.CreateModel(
            name="AvailabilityException",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("time_off", "Time off"), ("extra", "Extra shift")], max_length=10)),
                ("date", models.DateField()),
                ("start_time", models.TimeField(blank=True, help_text="Empty with the end: the whole day.", null=True)),
                ("end_time", models.TimeField(blank=True, null=True)),
                ("reason", models.CharField(blank=True, max_length=200)),
            ],
            options={
                "ordering": ["practitioner", "date", "start_time"],
            },
        ),
        migrations.CreateModel(
            name="CalendarFeed",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("prefix", models.CharField(max_length=12, unique=True)),
                ("digest", models.CharField(help_text="SHA-256 of the secret in the URL.", max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.CreateModel(
            name="WaitlistEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("window_start", models.DateTimeField()),
                ("window_end", models.DateTimeField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("waiting", "Waiting"),
                            ("booked", "Booked"),
                            ("withdrawn", "Withdrawn"),
                            ("lapsed", "Window passed"),
                        ],
                        default="waiting",
                        max_length=10,
                    ),
                ),
                ("notes", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name_plural": "waitlist entries",
                "ordering": ["created_at", "id"],
            },
        ),
        migrations.CreateModel(
            name="WaitlistOffer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("start", models.DateTimeField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("accepted", "Accepted"),
                            ("declined", "Declined"),
                            ("expired", "Expired"),
                            ("taken", "Taken by someone else"),
                        ],
                        default="pending",
                        max_length=10,
                    ),
                ),
                ("expires_at", models.DateTimeField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("responded_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="WorkingHours",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "weekday",
                    models.PositiveSmallIntegerField(
                        choices=[
                            (0, "Monday"),
                            (1, "Tuesday"),
                            (2, "Wednesday"),
                            (3, "Thursday"),
                            (4, "Friday"),
                            (5, "Saturday"),
                            (6, "Sunday"),
                        ]
                    ),
                ),
                ("start_time", models.TimeField()),
                ("end_time", models.TimeField()),
            ],
            options={
                "verbose_name_plural": "working hours",
                "ordering": ["practitioner", "weekday", "start_time"],
            },
        ),
        migrations.AlterModelOptions(
            name="appointment",
            options={
                "ordering": ["start", "id"],
                "permissions": [("override_hours_appointment", "Can book outside working hours")],
            },
        ),
        migrations.AddField(
            model_name="appointment",
            name="blocked_until",
            field=models.DateTimeField(help_text="End plus the service's buffer.", null=True),
        ),
        migrations.AddField(
            model_name="appointment",
            name="booked_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="appointment",
            name="cancellation_reason",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="appointment",
            name="cancelled_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="appointment",
            name="cancelled_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="appointment",
            name="cancelled_by_party",
            field=models.CharField(blank=True, choices=[("patient", "Patient"), ("clinic", "Clinic")], max_length=10),
        ),
        migrations.AddField(
            model_name="appointment",
            name="hours_override_by",
            field=models.ForeignKey(
                blank=True,
                help_text="Who booked this outside working hours.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="appointment",
            name="hours_override_reason",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="appointment",
            name="late_cancellation",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="appointment",
            name="location",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="appointments",
                to="clinic.location",
            ),
        ),
        migrations.AddField(
            model_name="appointment",
            name="sequence",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.CreateModel(
            name="AppointmentChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("booked", "Booked"), ("rescheduled", "Rescheduled"), ("status", "Status changed")],
                        max_length=20,
                    ),
                ),
                ("at", models.DateTimeField()),
                ("old_start", models.DateTimeField(blank=True, null=True)),
                ("new_start", models.DateTimeField(blank=True, null=True)),
                (
                    "old_status",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("booked", "Booked"),
                            ("confirmed", "Confirmed"),
                            ("arrived", "Arrived"),
                            ("completed", "Completed"),
                            ("cancelled", "Cancelled"),
                            ("no_show", "No-show"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "new_status",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("booked", "Booked"),
                            ("confirmed", "Confirmed"),
                            ("arrived", "Arrived"),
                            ("completed", "Completed"),
                            ("cancelled", "Cancelled"),
                            ("no_show", "No-show"),
                        ],
                        max_length=20,
                    ),
                ),
                ("reason", models.CharField(blank=True, max_length=200)),
                (
                    "appointment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="changes",
                        to="treatment_sessions.appointment",
                    ),
                ),
                (
                    "by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "new_practitioner",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="clinic.practitioner",
                    ),
                ),
                (
                    "new_room",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="clinic.room",
                    ),
                ),
                (
                    "old_practitioner",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="clinic.practitioner",
                    ),
                ),
                (
                    "old_room",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="clinic.room",
                    ),
                ),
            ],
            options={
                "ordering": ["appointment", "at", "id"],
            },
        ),
        migrations.CreateModel(
            name="AppointmentSeries",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("first_start", models.DateTimeField()),
                (
                    "interval_days",
                    models.PositiveSmallIntegerField(
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(90),
                        ]
                    ),
                ),
                (
                    "occurrences",
                    models.PositiveSmallIntegerField(
                        validators=[
                            django.core.validators.MinValueValidator(2),
                            django.core.validators.MaxValueValidator(52),
                        ]
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("clinic", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to="clinic.clinic")),
                (
                    "created_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "patient",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="appointment_series",
                        to="patients.patient",
                    ),
                ),
                (
                    "practitioner",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.practitioner"
                    ),
                ),
                (
                    "service",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.service"
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "appointment series",
                "ordering": ["-id"],
            },
        ),
        migrations.AddField(
            model_name="appointment",
            name="series",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="appointments",
                to="treatment_sessions.appointmentseries",
            ),
        ),
        migrations.RunPython(fill_booking_fields, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="appointment",
            name="blocked_until",
            field=models.DateTimeField(help_text="End plus the service's buffer."),
        ),
        migrations.AddIndex(
            model_name="appointment",
            index=models.Index(
                condition=models.Q(("room__isnull", False)), fields=["room", "start"], name="appt_room_start"
            ),
        ),
        migrations.AddIndex(
            model_name="appointment",
            index=models.Index(fields=["patient", "start"], name="appt_patient_start"),
        ),
        migrations.AddConstraint(
            model_name="appointment",
            constraint=models.CheckConstraint(
                condition=models.Q(("blocked_until__gte", models.F("end"))),
                name="appointment_blocked_until_not_before_end",
            ),
        ),
        migrations.AddConstraint(
            model_name="appointment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "cancelled"), _negated=True), ("cancelled_at__isnull", False), _connector="OR"
                ),
                name="appointment_cancelled_has_time",
            ),
        ),
        migrations.AddConstraint(
            model_name="appointment",
            constraint=clinic.models.constraints.PostgresOnlyExclusionConstraint(
                condition=models.Q(("status__in", ["booked", "confirmed", "arrived", "completed"])),
                expressions=[
                    ("practitioner", "="),
                    (
                        sessions.models.TsTzRange(
                            "start", "blocked_until", django.contrib.postgres.fields.ranges.RangeBoundary()
                        ),
                        "&&",
                    ),
                ],
                name="appointment_no_practitioner_overlap",
                violation_error_code="practitioner_overlap",
            ),
        ),
        migrations.AddConstraint(
            model_name="appointment",
            constraint=clinic.models.constraints.PostgresOnlyExclusionConstraint(
                condition=models.Q(
                    ("status__in", ["booked", "confirmed", "arrived", "completed"]), ("room__isnull", False)
                ),
                expressions=[
                    ("room", "="),
                    (
                        sessions.models.TsTzRange(
                            "start", "blocked_until", django.contrib.postgres.fields.ranges.RangeBoundary()
                        ),
                        "&&",
                    ),
                ],
                name="appointment_no_room_overlap",
                violation_error_code="room_overlap",
            ),
        ),
        migrations.AddField(
            model_name="availabilityexception",
            name="clinic",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to="clinic.clinic"),
        ),
        migrations.AddField(
            model_name="availabilityexception",
            name="location",
            field=models.ForeignKey(
                blank=True,
                help_text="Where an extra shift is.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                to="clinic.location",
            ),
        ),
        migrations.AddField(
            model_name="availabilityexception",
            name="practitioner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="availability_exceptions",
                to="clinic.practitioner",
            ),
        ),
        migrations.AddField(
            model_name="calendarfeed",
            name="clinic",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to="clinic.clinic"),
        ),
        migrations.AddField(
            model_name="calendarfeed",
            name="created_by",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="calendarfeed",
            name="practitioner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="calendar_feeds", to="clinic.practitioner"
            ),
        ),
        migrations.AddField(
            model_name="waitlistentry",
            name="appointment",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="waitlist_entry",
                to="treatment_sessions.appointment",
            ),
        ),
        migrations.AddField(
            model_name="waitlistentry",
            name="clinic",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to="clinic.clinic"),
        ),
        migrations.AddField(
            model_name="waitlistentry",
            name="created_by",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="waitlistentry",
            name="patient",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="waitlist_entries", to="patients.patient"
            ),
        ),
        migrations.AddField(
            model_name="waitlistentry",
            name="practitioner",
            field=models.ForeignKey(
                blank=True,
                help_text="Empty: any practitioner who offers the service.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="clinic.practitioner",
            ),
        ),
        migrations.AddField(
            model_name="waitlistentry",
            name="service",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.service"),
        ),
        migrations.AddField(
            model_name="waitlistoffer",
            name="appointment",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="treatment_sessions.appointment",
            ),
        ),
        migrations.AddField(
            model_name="waitlistoffer",
            name="clinic",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to="clinic.clinic"),
        ),
        migrations.AddField(
            model_name="waitlistoffer",
            name="entry",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="offers",
                to="treatment_sessions.waitlistentry",
            ),
        ),
        migrations.AddField(
            model_name="waitlistoffer",
            name="freed_by",
            field=models.ForeignKey(
                blank=True,
                help_text="What freed it.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="treatment_sessions.appointment",
            ),
        ),
        migrations.AddField(
            model_name="waitlistoffer",
            name="practitioner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="clinic.practitioner"
            ),
        ),
        migrations.AddField(
            model_name="waitlistoffer",
            name="room",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="clinic.room"
            ),
        ),
        migrations.AddField(
            model_name="workinghours",
            name="clinic",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to="clinic.clinic"),
        ),
        migrations.AddField(
            model_name="workinghours",
            name="location",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="working_hours", to="clinic.location"
            ),
        ),
        migrations.AddField(
            model_name="workinghours",
            name="practitioner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="working_hours", to="clinic.practitioner"
            ),
        ),
        migrations.AddConstraint(
            model_name="appointmentseries",
            constraint=models.CheckConstraint(
                condition=models.Q(("interval_days__gte", 1), ("interval_days__lte", 90)),
                name="series_interval_1_to_90_days",
            ),
        ),
        migrations.AddConstraint(
            model_name="appointmentseries",
            constraint=models.CheckConstraint(
                condition=models.Q(("occurrences__gte", 2), ("occurrences__lte", 52)), name="series_2_to_52_occurrences"
            ),
        ),
        migrations.AddIndex(
            model_name="availabilityexception",
            index=models.Index(fields=["practitioner", "date"], name="availability_exc_date"),
        ),
        migrations.AddConstraint(
            model_name="availabilityexception",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("start_time__isnull", True), ("end_time__isnull", True)),
                    models.Q(
                        ("start_time__isnull", False),
                        ("end_time__isnull", False),
                        ("end_time__gt", models.F("start_time")),
                    ),
                    _connector="OR",
                ),
                name="availability_exc_times_both_or_none",
            ),
        ),
        migrations.AddConstraint(
            model_name="availabilityexception",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "extra"), _negated=True),
                    models.Q(("start_time__isnull", False), ("location__isnull", False)),
                    _connector="OR",
                ),
                name="availability_exc_extra_has_times_and_location",
            ),
        ),
        migrations.AddIndex(
            model_name="waitlistentry",
            index=models.Index(
                condition=models.Q(("status", "waiting")),
                fields=["clinic", "service", "created_at"],
                name="waitlist_waiting",
            ),
        ),
        migrations.AddConstraint(
            model_name="waitlistentry",
            constraint=models.CheckConstraint(
                condition=models.Q(("window_end__gt", models.F("window_start"))), name="waitlist_window_end_after_start"
            ),
        ),
        migrations.AddIndex(
            model_name="waitlistoffer",
            index=models.Index(
                condition=models.Q(("status", "pending")), fields=["expires_at"], name="waitlist_offer_pending_due"
            ),
        ),
        migrations.AddConstraint(
            model_name="waitlistoffer",
            constraint=models.UniqueConstraint(
                fields=("entry", "practitioner", "start"), name="waitlist_offer_once_per_slot"
            ),
        ),
        migrations.AddConstraint(
            model_name="workinghours",
            constraint=models.CheckConstraint(
                condition=models.Q(("end_time__gt", models.F("start_time"))), name="working_hours_end_after_start"
            ),
        ),
        migrations.AddConstraint(
            model_name="workinghours",
            constraint=models.CheckConstraint(
                condition=models.Q(("weekday__gte", 0), ("weekday__lte", 6)), name="working_hours_weekday_0_6"
            ),
        ),
    ]
