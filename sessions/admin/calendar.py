"""The front desk's booking calendar in the admin: `/admin/calendar/`.

Day and week views, a column per practitioner (or per room), appointments as blocks sized by
their length, and the free starts of a chosen service from the API's slot search, each one
link away from a prefilled booking form. Booking, moving and cancelling call the same
services as the API (`appointment_book`, `appointment_reschedule`, `appointment_cancel`,
`appointment_no_show`), and a clash is refused with the API's 409 message, in clinic time.
Plain links, forms and buttons: no script, so it works under the CSP and from the keyboard.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from clinic.admin import user_clinic_ids
from clinic.models import Clinic, Practitioner, Room, Service
from clinic.security.middleware import staff_clinic
from patients.models import Patient
from sessions import services
from sessions.admin.calendar_layout import (
    CalendarQuery,
    appointment_blocks,
    bookable_services,
    calendar_columns,
    flag_badges,
    free_slots_for_move,
    services_offered,
    visible_practitioners,
    visible_rooms,
)
from sessions.models import Appointment, AppointmentStatus, CancelledBy

PERM = "treatment_sessions.{}_appointment"
MOVABLE = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
NO_SHOW = "no_show"
PATIENT_MATCHES = 20


def _require(request, action: str) -> None:
    if not request.user.has_perm(PERM.format(action)):
        raise PermissionDenied


def when(start: dt.datetime, end: dt.datetime, tz) -> str:
    """ "Tuesday 2 March 2027, 10:00–11:00 (America/Toronto)": what a person reads."""
    start, end = start.astimezone(tz), end.astimezone(tz)
    return f"{start:%A} {start.day} {start:%B %Y}, {start:%H:%M}–{end:%H:%M} ({tz.key})"


def _render(request, template: str, context: dict, tz, status: int = 200) -> TemplateResponse:
    response = TemplateResponse(request, template, {**admin.site.each_context(request), **context}, status=status)
    with timezone.override(tz):
        return response.render()


def calendar_url(clinic: Clinic, keep: dict | None = None, **query) -> str:
    """The calendar of `clinic` with the query `keep` carries, `query` overriding it."""
    return reverse("admin:calendar") + "?" + urlencode({"clinic": clinic.slug, **(keep or {}), **query})


# --- the calendar ------------------------------------------------------------------------


class CalendarForm(forms.Form):
    """What the toolbar may ask; the service and the column come from lists already read."""

    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    view = forms.ChoiceField(choices=[("day", "Day"), ("week", "Week")], required=False)
    by = forms.ChoiceField(choices=[("practitioner", "Practitioners"), ("room", "Rooms")], required=False)

    def clean_date(self):
        date = self.cleaned_data["date"]
        if date is not None and not 1900 <= date.year <= 2199:
            raise ValidationError("Choose a date between 1900 and 2199.")
        return date


def _pick(items, raw: str | None):
    return next((i for i in items if str(i.pk) == (raw or "")), None)


def calendar_view(request):
    _require(request, "view")
    clinic = staff_clinic(request)
    if clinic is None:
        raise Http404("You are not a member of any clinic.")
    tz = clinic.tz
    practitioners, rooms, offered = visible_practitioners(clinic), visible_rooms(clinic), bookable_services(clinic)
    form = CalendarForm(request.GET)
    errors = {} if form.is_valid() else form.errors
    date = form.cleaned_data.get("date") or timezone.now().astimezone(tz).date()
    week = form.cleaned_data.get("view") == "week"
    by_room = form.cleaned_data.get("by") == "room"
    focus = _pick(rooms, request.GET.get("room")) if by_room else _pick(practitioners, request.GET.get("practitioner"))
    if week and focus is None:
        owners = rooms if by_room else practitioners
        focus = owners[0] if owners else None
    # Free times of the first service the practitioners shown offer, until the desk picks
    # one (or none): a service nobody in view offers would only ever show "no free times".
    shown = [focus] if isinstance(focus, Practitioner) else practitioners
    if "service" in request.GET:
        service = _pick(offered, request.GET["service"])
    else:
        theirs = services_offered(shown) if not by_room else set()
        service = next((s for s in offered if s.pk in theirs), None)
    can_book = request.user.has_perm(PERM.format("add"))
    if not can_book:
        service = None  # free times are links to the booking form
    columns, hours, height = calendar_columns(
        CalendarQuery(
            clinic=clinic,
            date=date,
            week=week,
            by_room=by_room,
            service=service,
            focus=focus,
            practitioners=practitioners,
            rooms=rooms,
        )
    )
    step = dt.timedelta(days=7 if week else 1)
    keep = {k: v for k, v in request.GET.items() if k in ("view", "by", "service", "practitioner", "room")}
    owner_key = "room" if by_room else "practitioner"
    owners = rooms if by_room else practitioners
    focus_links = [] if week else [("All", calendar_url(clinic, _without(keep, owner_key), date=date), focus is None)]
    focus_links += [
        (str(o), calendar_url(clinic, keep, **{owner_key: o.pk}, date=date), focus is not None and o.pk == focus.pk)
        for o in owners
    ]
    context = {
        "title": f"Calendar: {clinic.name}",
        "clinic": clinic,
        "clinic_choices": _clinic_choices(request),
        "form": form,
        "errors": errors,
        "date": date,
        "week": week,
        "by_room": by_room,
        "service": service,
        "services": offered,
        "focus": focus,
        "focus_links": focus_links,
        "columns": columns,
        "hours": hours,
        "height": height,
        "zone": clinic.time_zone,
        "previous_url": calendar_url(clinic, keep, date=date - step),
        "next_url": calendar_url(clinic, keep, date=date + step),
        "today_url": calendar_url(clinic, keep),
        "day_url": calendar_url(clinic, _without(keep, "view"), date=date),
        "week_url": calendar_url(clinic, keep, view="week", date=date),
        "people_url": calendar_url(clinic, _without(keep, "by", "room"), date=date),
        "rooms_url": calendar_url(clinic, _without(keep, "practitioner"), by="room", date=date),
        "heading": _heading(date, week),
        "can_book": can_book,
        "has_free": any(c.free_count for c in columns),
        "gone_count": sum(len(c.gone) for c in columns),
        "span": _span(date, week),
    }
    return _render(request, "admin/treatment_sessions/calendar.html", context, tz, status=400 if errors else 200)


def _without(query: dict, *names: str) -> dict:
    return {k: v for k, v in query.items() if k not in names}


def _heading(date: dt.date, week: bool) -> str:
    if not week:
        return f"{date:%A} {date.day} {date:%B %Y}"
    first = date - dt.timedelta(days=date.weekday())
    last = first + dt.timedelta(days=6)
    return f"Week of {first:%A} {first.day} {first:%B} to {last:%A} {last.day} {last:%B %Y}"


def _span(date: dt.date, week: bool) -> str:
    """ "on Thursday 3 December" or "in the week of Monday 30 November": for "no free times"."""
    if not week:
        return f"on {date:%A} {date.day} {date:%B}"
    first = date - dt.timedelta(days=date.weekday())
    return f"in the week of {first:%A} {first.day} {first:%B}"


def _clinic_choices(request) -> list[Clinic]:
    if request.user.is_superuser:
        return list(Clinic.objects.filter(is_active=True))
    return list(Clinic.objects.filter(pk__in=user_clinic_ids(request), is_active=True))


# --- booking from a free slot --------------------------------------------------------------


class SlotForm(forms.Form):
    """The slot a free-time link carries: read back in the clinic, never trusted."""

    practitioner = forms.ModelChoiceField(queryset=Practitioner.objects.none())
    service = forms.ModelChoiceField(queryset=Service.objects.none())
    room = forms.ModelChoiceField(queryset=Room.objects.none(), required=False)
    start = forms.CharField(max_length=40)

    def __init__(self, *args, clinic: Clinic, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.fields["practitioner"].queryset = Practitioner.objects.filter(clinic=clinic)
        self.fields["service"].queryset = Service.objects.filter(clinic=clinic)
        self.fields["room"].queryset = Room.objects.filter(clinic=clinic)

    def clean_start(self) -> dt.datetime:
        try:
            value = dt.datetime.fromisoformat(self.cleaned_data["start"])
        except ValueError:
            raise ValidationError("Not a time. Choose a free time from the calendar.") from None
        if timezone.is_naive(value) or not 1900 <= value.year <= 2199:
            raise ValidationError("Not a time. Choose a free time from the calendar.")
        return value


class BookForm(SlotForm):
    patient = forms.ModelChoiceField(
        queryset=Patient.objects.none(), error_messages={"required": "Choose the patient to book."}
    )
    notes = forms.CharField(required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, clinic: Clinic, **kwargs):
        super().__init__(*args, clinic=clinic, **kwargs)
        self.fields["patient"].queryset = Patient.objects.filter(clinic=clinic, is_archived=False)


def _request_clinic(request) -> Clinic:
    clinic = staff_clinic(request)
    if clinic is None:
        raise Http404("You are not a member of any clinic.")
    return clinic


def book_view(request):
    _require(request, "add")
    clinic = _request_clinic(request)
    tz = clinic.tz
    slot = SlotForm(request.GET if request.method == "GET" else request.POST, clinic=clinic)
    if not slot.is_valid():
        return _render(
            request, "admin/treatment_sessions/calendar_book.html",
            {"title": "Book", "slot_errors": slot.errors, "clinic": clinic, "back_url": calendar_url(clinic)},
            tz, status=400,
        )  # fmt: skip
    data = slot.cleaned_data
    start = data["start"]
    end = start + dt.timedelta(minutes=data["service"].duration_minutes)
    back_url = calendar_url(clinic, date=start.astimezone(tz).date(), service=data["service"].pk)
    query = request.GET.get("q", "").strip()[:100]
    form, conflict, status = None, None, 200
    if request.method == "POST":
        form = BookForm(request.POST, clinic=clinic)
        if form.is_valid():
            try:
                appointment = services.appointment_book(
                    clinic=clinic,
                    patient=form.cleaned_data["patient"],
                    practitioner=data["practitioner"],
                    service=data["service"],
                    room=data["room"],
                    start=start,
                    notes=form.cleaned_data["notes"],
                    booked_by=request.user,
                )
            except services.BookingConflictError as exc:
                conflict, status = _clash(exc, clinic), 409
            except ValidationError as exc:
                _add_errors(form, exc)
                status = 400
            else:
                messages.success(
                    request,
                    f"Booked {appointment.patient} with {appointment.practitioner} for "
                    f"{when(appointment.start, appointment.end, tz)}.",
                )
                return HttpResponseRedirect(back_url)
        else:
            status = 400
    patients = []
    if query:
        patients = list(Patient.objects.filter(clinic=clinic, is_archived=False).search(query)[:PATIENT_MATCHES])
    chosen = form.cleaned_data.get("patient") if form is not None else None
    if chosen is not None and chosen not in patients:
        patients.insert(0, chosen)
    # The severity badge the calendar shows (one query), so the desk sees it before booking.
    flags = flag_badges({p.pk for p in patients}) if patients else {}
    context = {
        "title": f"Book {data['service'].name} with {data['practitioner']}",
        "clinic": clinic,
        "slot": data,
        "when": when(start, end, tz),
        "hidden": {
            "clinic": clinic.slug,
            "practitioner": data["practitioner"].pk,
            "service": data["service"].pk,
            "room": data["room"].pk if data["room"] else "",
            "start": start.isoformat(),
        },
        "q": query,
        "patients": [(p, flags.get(p.pk)) for p in patients],
        "chosen": chosen,
        "form": form,
        "conflict": conflict,
        "back_url": back_url,
    }
    return _render(request, "admin/treatment_sessions/calendar_book.html", context, tz, status=status)


def _clash(exc: services.BookingConflictError, clinic: Clinic) -> dict:
    """The API's 409 message, and a link to the appointment that holds the time."""
    first = exc.clashes[0]
    return {
        "message": exc.message(clinic.tz),
        "url": reverse("admin:calendar_appointment", args=[first.appointment_id]),
        "appointment": first.appointment_id,
    }


def _add_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)


# --- one appointment: reschedule and cancel --------------------------------------------------


class CancelForm(forms.Form):
    party = forms.ChoiceField(
        label="Who cancelled",
        widget=forms.RadioSelect,
        choices=[
            (CancelledBy.PATIENT.value, "The patient cancelled"),
            (CancelledBy.CLINIC.value, "The clinic cancelled"),
            (NO_SHOW, "No-show: the patient did not come"),
        ],
        error_messages={"required": "Say who cancelled."},
    )
    reason = forms.CharField(
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Give the reason."},
    )


def _appointment_for(request, pk) -> Appointment:
    """An appointment of one of the user's clinics; another clinic's is a 404."""
    rows = Appointment.objects.select_related("clinic", "patient", "practitioner", "service", "room")
    if not request.user.is_superuser:
        rows = rows.filter(clinic_id__in=user_clinic_ids(request))
    return get_object_or_404(rows, pk=pk)


def appointment_view(request, pk: int):
    _require(request, "view")
    appointment = _appointment_for(request, pk)
    clinic, tz = appointment.clinic, appointment.clinic.tz
    cancel_form, conflict, status = CancelForm(), None, 200
    if request.method == "POST":
        _require(request, "change")
        if "slot" in request.POST:
            outcome = _reschedule(request, appointment)
        else:
            cancel_form = CancelForm(request.POST)
            outcome = _cancel(request, appointment, cancel_form)
        if isinstance(outcome, HttpResponseRedirect):
            return outcome
        conflict, status = outcome
        appointment = _appointment_for(request, pk)
    local_date = appointment.start.astimezone(tz).date()
    picked = CalendarForm({"date": request.GET.get("date", "")})
    date = local_date
    if picked.is_valid():
        date = picked.cleaned_data["date"] or local_date
    else:
        status = 400
        messages.error(request, f"Date: {' '.join(picked.errors['date'])} Showing the appointment's day.")
    movable = appointment.status in MOVABLE
    days = []
    if movable:
        days = free_slots_for_move(appointment=appointment, date=date, practitioners=visible_practitioners(clinic))
    card = appointment_blocks([appointment], tz)[appointment.pk]
    context = {
        "title": f"{appointment.patient}: {appointment.service.name} with {appointment.practitioner}",
        "clinic": clinic,
        "appointment": appointment,
        "card": card,
        "when": when(appointment.start, appointment.end, tz),
        "movable": movable,
        "date": date,
        "previous_date": date - dt.timedelta(days=1),
        "next_date": date + dt.timedelta(days=1),
        "free": days,
        "cancel_form": cancel_form,
        "conflict": conflict,
        "calendar_url": calendar_url(clinic, date=local_date),
        "change_url": reverse("admin:treatment_sessions_appointment_change", args=[appointment.pk]),
        "can_change": request.user.has_perm(PERM.format("change")),
        "zone": clinic.time_zone,
    }
    return _render(request, "admin/treatment_sessions/calendar_appointment.html", context, tz, status=status)


def _reschedule(request, appointment: Appointment):
    clinic, tz = appointment.clinic, appointment.clinic.tz
    try:
        practitioner_id, room_id, raw_start = request.POST["slot"].split("|", 2)
        start = dt.datetime.fromisoformat(raw_start)
        practitioner = Practitioner.objects.get(clinic=clinic, pk=int(practitioner_id))
        room = Room.objects.get(clinic=clinic, pk=int(room_id)) if room_id else None
        if timezone.is_naive(start):
            raise ValueError
    except (ValueError, Practitioner.DoesNotExist, Room.DoesNotExist):
        messages.error(request, "That is not one of the free times shown. Choose one from the list.")
        return None, 400
    old = when(appointment.start, appointment.end, tz)
    if (
        start == appointment.start
        and practitioner.pk == appointment.practitioner_id
        and (room is None or room.pk == appointment.room_id)
    ):
        messages.error(
            request,
            f"The appointment is already at {old} with {practitioner}: nothing was changed. Choose another time.",
        )
        return None, 400
    try:
        moved = services.appointment_reschedule(
            appointment=appointment, start=start, practitioner=practitioner, room=room,
            by=request.user, reason="moved from the calendar",
        )  # fmt: skip
    except services.BookingConflictError as exc:
        return _clash(exc, clinic), 409
    except (ValidationError, services.InvalidTransitionError) as exc:
        messages.error(request, " ".join(_messages_of(exc)))
        return None, 400
    messages.success(
        request, f"Moved {moved.patient} from {old} to {when(moved.start, moved.end, tz)} with {moved.practitioner}."
    )
    return HttpResponseRedirect(calendar_url(clinic, date=moved.start.astimezone(tz).date()))


def _cancel(request, appointment: Appointment, form: CancelForm):
    clinic, tz = appointment.clinic, appointment.clinic.tz
    if not form.is_valid():
        return None, 400
    party, reason = form.cleaned_data["party"], form.cleaned_data["reason"]
    try:
        if party == NO_SHOW:
            services.appointment_no_show(appointment=appointment, by=request.user, reason=reason)
        else:
            services.appointment_cancel(appointment=appointment, by=request.user, party=party, reason=reason)
    except (ValidationError, services.InvalidTransitionError) as exc:
        form.add_error(None, " ".join(_messages_of(exc)))
        return None, 400
    done = "Marked as a no-show" if party == NO_SHOW else "Cancelled"
    messages.success(
        request, f"{done}: {appointment.patient}, {when(appointment.start, appointment.end, tz)}. Reason: {reason}"
    )
    return HttpResponseRedirect(calendar_url(clinic, date=appointment.start.astimezone(tz).date()))


def _messages_of(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [str(m) for m in exc.messages]
    return [str(exc)]


# --- routes: under the admin site, named `admin:calendar...` ---------------------------------


def calendar_urls(site: admin.AdminSite) -> list:
    return [
        path("calendar/", site.admin_view(calendar_view), name="calendar"),
        path("calendar/book/", site.admin_view(book_view), name="calendar_book"),
        path("calendar/appointment/<int:pk>/", site.admin_view(appointment_view), name="calendar_appointment"),
    ]


def _site_urls_with_calendar(get_urls):
    def urls():
        return [*calendar_urls(admin.site), *get_urls()]

    return urls


# The calendar belongs to no one model, so it hangs off the site rather than a ModelAdmin.
admin.site.get_urls = _site_urls_with_calendar(admin.site.get_urls)
