"""Seeds the peer's database with the comparison's small dataset; prints what the driver needs.

Run inside the peer's virtual environment: `python -m peer_site.seed <clients>`.
"""

import datetime as dt
import json
import sys

import django

django.setup()

from appointment.models import Config, Service, StaffMember, WorkingHours  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

clients = int(sys.argv[1])
User = get_user_model()
Config.objects.get_or_create(defaults={"slot_duration": 60, "lead_time": dt.time(9), "finish_time": dt.time(17)})
service = Service.objects.create(name="Massage 60", duration=dt.timedelta(minutes=60), price=100)
therapist = User.objects.create(username="dana", email="dana@example.com", first_name="Dana", last_name="Lee")
staff = StaffMember.objects.create(
    user=therapist, slot_duration=60, lead_time=dt.time(9), finish_time=dt.time(17),
    work_on_saturday=True, work_on_sunday=True,
)  # fmt: skip
staff.services_offered.add(service)
for day in range(7):
    WorkingHours.objects.create(staff_member=staff, day_of_week=day, start_time=dt.time(9), end_time=dt.time(17))
sessions = []
for i in range(clients):
    user = User.objects.create(username=f"client{i}", email=f"client{i}@example.com", first_name=f"Client {i}")
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.create()
    sessions.append(store.session_key)
print(json.dumps({"service": service.pk, "staff": staff.pk, "sessions": sessions}))
