"""The booking services: hours, exceptions, buffers, rooms, states, history, late cancellation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from sessions.models import (
    Appointment,
    AppointmentChange,
    AppointmentChangeKind,
    AppointmentStatus,
    CancelledBy,
    ExceptionKind,
)
from sessions.services import (
    BookingConflictError,
    InvalidTransitionError,
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_complete,
    appointment_confirm,
    appointment_no_show,
    appointment_reschedule,
)
from tests.factories import (
    AvailabilityExceptionFactory,
    PatientFactory,
    PractitionerFactory,
    RoomFactory,
    ServiceFactory,
)
from tests.sessions.conftest import local, weekday_hours

pytestmark = pytest.mark.django_db


def book(s, start, **kwargs):
    values = {
        "clinic": s.clinic,
        "patient": s.patient,
        "practitioner": s.practitioner,
        "service": s.massage,
        "start": start,
    }
    values.update(kwargs)
    return appointment_book(**values)


def test_booking_stores_utc_end_buffer_room_and_history(setup):
    appointment = book(setup, local(2027, 3, 2, 10, 0))
    appointment.refresh_from_db()
    assert appointment.start == dt.datetime(2027, 3, 2, 15, 0, tzinfo=dt.UTC)
    assert appointment.end == local(2027, 3, 2, 11, 0)
    assert appointment.blocked_until == local(2027, 3, 2, 11, 15)
    assert appointment.room == setup.room1
    assert appointment.location == setup.location
    assert appointment.status == AppointmentStatus.BOOKED
    assert list(appointment.changes.values_list("kind", flat=True)) == [AppointmentChangeKind.BOOKED]


def test_the_buffer_after_an_appointment_is_kept_free(setup):
    first = book(setup, local(2027, 3, 2, 10, 0), room=setup.room1)
    with pytest.raises(BookingConflictError) as caught:
        book(setup, local(2027, 3, 2, 11, 0), patient=setup.patient2, room=setup.room2)
    clash = caught.value.clashes[0]
    assert (clash.resource, clash.appointment_id) == ("practitioner", first.id)
    assert clash.end == local(2027, 3, 2, 11, 15)
    assert book(setup, local(2027, 3, 2, 11, 15), patient=setup.patient2).start == local(2027, 3, 2, 11, 15)


def test_a_room_cannot_hold_two_appointments_of_different_practitioners(setup):
    book(setup, local(2027, 3, 2, 10, 0), room=setup.room1)
    with pytest.raises(BookingConflictError) as caught:
        book(setup, local(2027, 3, 2, 10, 30), practitioner=setup.other, patient=setup.patient2, room=setup.room1)
    assert caught.value.clashes[0].resource == "room"
    assert caught.value.clashes[0].start == local(2027, 3, 2, 10, 0)
    # Without a room the service picks the free one.
    moved = book(setup, local(2027, 3, 2, 10, 30), practitioner=setup.other, patient=setup.patient2)
    assert moved.room == setup.room2


def test_when_every_room_is_taken_the_conflict_names_the_rooms_time(setup):
    extra = PractitionerFactory(clinic=setup.clinic, display_name="Vic")
    extra.services.add(setup.massage)
    weekday_hours(setup.clinic, extra, setup.location)
    book(setup, local(2027, 3, 2, 10, 0), room=setup.room1)
    book(setup, local(2027, 3, 2, 10, 0), practitioner=setup.other, patient=setup.patient2)
    with pytest.raises(BookingConflictError) as caught:
        book(setup, local(2027, 3, 2, 10, 0), practitioner=extra, patient=PatientFactory(clinic=setup.clinic))
    assert {c.resource for c in caught.value.clashes} == {"room"}
    assert {c.start for c in caught.value.clashes} == {local(2027, 3, 2, 10, 0)}


def test_services_without_a_room_take_none(setup):
    appointment = book(setup, local(2027, 3, 2, 10, 0), service=setup.acupuncture)
    assert appointment.room is None


def test_outside_working_hours_is_refused_with_the_reason(setup):
    with pytest.raises(ValidationError) as caught:
        book(setup, local(2027, 3, 2, 16, 30))  # would end at 17:30
    assert "working hours" in caught.value.message_dict["start"][0]
    assert not Appointment.objects.exists()


def test_time_off_is_refused_with_its_reason(setup):
    AvailabilityExceptionFactory(
        clinic=setup.clinic,
        practitioner=setup.practitioner,
        kind=ExceptionKind.TIME_OFF,
        date=dt.date(2027, 3, 2),
        start_time=dt.time(12),
        end_time=dt.time(17),
        reason="course",
    )
    assert book(setup, local(2027, 3, 2, 10, 0))
    with pytest.raises(ValidationError) as caught:
        book(setup, local(2027, 3, 2, 13, 0), patient=setup.patient2)
    assert "off at that time (course)" in caught.value.message_dict["start"][0]


def test_an_extra_shift_opens_a_saturday(setup):
    setup.practitioner.working_hours.filter(weekday=5).delete()
    with pytest.raises(ValidationError):
        book(setup, local(2027, 3, 6, 10, 0))
    AvailabilityExceptionFactory(
        clinic=setup.clinic,
        practitioner=setup.practitioner,
        kind=ExceptionKind.EXTRA,
        date=dt.date(2027, 3, 6),
        start_time=dt.time(10),
        end_time=dt.time(12),
        location=setup.location,
    )
    assert book(setup, local(2027, 3, 6, 10, 0)).location == setup.location


def test_override_books_outside_hours_and_records_who_and_why(setup, receptionist):
    with pytest.raises(ValidationError) as caught:
        book(setup, local(2027, 3, 2, 18, 0), hours_override=True, booked_by=receptionist)
    assert "hours_override_reason" in caught.value.message_dict
    appointment = book(
        setup, local(2027, 3, 2, 18, 0), hours_override=True, hours_override_reason="post-op", booked_by=receptionist
    )
    assert (appointment.hours_override_by, appointment.hours_override_reason) == (receptionist, "post-op")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": local(2027, 3, 2, 10, 7)}, "start"),
        ({"start": dt.datetime(2027, 3, 2, 10, 0)}, "start"),  # noqa: DTZ001 - naive on purpose
        ({"start": local(2027, 2, 26, 10, 0)}, "start"),  # in the past
    ],
)
def test_bad_times_are_field_errors_and_write_nothing(setup, change, field):
    with pytest.raises(ValidationError) as caught:
        book(setup, **change)
    assert field in caught.value.message_dict
    assert not Appointment.objects.exists()


def test_service_not_offered_inactive_practitioner_and_foreign_ids_are_field_errors(setup, other_clinic):
    not_offered = ServiceFactory(clinic=setup.clinic, name="Cupping")
    with pytest.raises(ValidationError) as caught:
        book(setup, local(2027, 3, 2, 10, 0), service=not_offered)
    assert "does not offer" in caught.value.message_dict["service"][0]

    foreign_room = RoomFactory(clinic=other_clinic)
    with pytest.raises(ValidationError) as caught:
        book(setup, local(2027, 3, 2, 10, 0), room=foreign_room)
    assert caught.value.message_dict["room"] == ["Not found."]

    setup.practitioner.is_active = False
    setup.practitioner.save()
    with pytest.raises(ValidationError) as caught:
        book(setup, local(2027, 3, 2, 10, 0))
    assert "inactive" in caught.value.message_dict["practitioner"][0]
    assert not Appointment.objects.exists()


def test_patient_overlap_is_refused_only_when_the_clinic_says_so(setup):
    book(setup, local(2027, 3, 2, 10, 0))
    second = book(setup, local(2027, 3, 2, 10, 0), practitioner=setup.other)
    second.delete()
    setup.clinic.refuse_patient_overlap = True
    setup.clinic.save()
    with pytest.raises(BookingConflictError) as caught:
        book(setup, local(2027, 3, 2, 10, 30), practitioner=setup.other)
    assert caught.value.clashes[0].resource == "patient"


def test_states_walk_forward_and_refuse_going_back(setup, receptionist):
    appointment = book(setup, local(2027, 3, 2, 10, 0))
    appointment_confirm(appointment=appointment, by=receptionist)
    appointment_check_in(appointment=appointment, by=receptionist)
    with pytest.raises(InvalidTransitionError):
        appointment_cancel(appointment=appointment, by=receptionist)
    appointment_complete(appointment=appointment)
    assert appointment.status == AppointmentStatus.COMPLETED
    assert appointment.sequence == 3
    statuses = list(
        AppointmentChange.objects.filter(appointment=appointment, kind="status").values_list("new_status", flat=True)
    )
    assert statuses == ["confirmed", "arrived", "completed"]


def test_no_show_only_once_the_appointment_has_started(setup, time_machine):
    appointment = book(setup, local(2027, 3, 2, 10, 0))
    with pytest.raises(ValidationError):
        appointment_no_show(appointment=appointment)
    time_machine.move_to(local(2027, 3, 2, 10, 20))
    assert appointment_no_show(appointment=appointment).status == AppointmentStatus.NO_SHOW


def test_cancelling_frees_the_slot_and_flags_late_patient_cancellations(setup, receptionist):
    soon = book(setup, local(2027, 3, 1, 10, 0))  # two hours from now
    later = book(setup, local(2027, 3, 3, 10, 0))
    appointment_cancel(appointment=soon, by=receptionist, party=CancelledBy.PATIENT, reason="sick")
    appointment_cancel(appointment=later, by=receptionist, party=CancelledBy.PATIENT)
    assert (soon.late_cancellation, later.late_cancellation) == (True, False)
    assert soon.cancelled_by == receptionist
    assert soon.cancellation_reason == "sick"
    assert book(setup, local(2027, 3, 1, 10, 0), patient=setup.patient2).status == AppointmentStatus.BOOKED


def test_reschedule_moves_keeps_history_and_bumps_the_sequence(setup, receptionist):
    appointment = book(setup, local(2027, 3, 2, 10, 0))
    blocker = book(setup, local(2027, 3, 2, 14, 0), patient=setup.patient2)
    with pytest.raises(BookingConflictError):
        appointment_reschedule(appointment=appointment, start=local(2027, 3, 2, 13, 30), by=receptionist)
    moved = appointment_reschedule(
        appointment=appointment, start=local(2027, 3, 2, 10, 30), by=receptionist, reason="patient asked"
    )
    assert moved.start == local(2027, 3, 2, 10, 30)  # overlapping its own old time is fine
    assert moved.room == setup.room1  # kept its room
    assert moved.sequence == 1
    change = moved.changes.get(kind=AppointmentChangeKind.RESCHEDULED)
    assert (change.old_start, change.new_start, change.reason) == (
        local(2027, 3, 2, 10, 0),
        local(2027, 3, 2, 10, 30),
        "patient asked",
    )
    to_other = appointment_reschedule(appointment=blocker, start=local(2027, 3, 2, 14, 0), practitioner=setup.other)
    assert to_other.practitioner == setup.other


def test_the_database_refuses_an_overlap_even_past_the_service(setup):
    appointment = book(setup, local(2027, 3, 2, 10, 0))
    twin = Appointment(
        clinic=setup.clinic,
        patient=setup.patient2,
        practitioner=setup.practitioner,
        service=setup.massage,
        start=local(2027, 3, 2, 11, 0),
        end=local(2027, 3, 2, 12, 0),
        blocked_until=local(2027, 3, 2, 12, 15),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()
    # A cancelled appointment no longer holds the time.
    appointment_cancel(appointment=appointment)
    twin.save()
    assert twin.pk
