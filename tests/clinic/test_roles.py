import pytest
from django.contrib.auth.models import Group

from clinic.security.roles import Role
from clinic.services import membership_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_migrations_create_one_group_per_role():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Owner", "Therapist", "Receptionist"}


def test_owner_group_manages_staff_and_services_but_receptionist_only_views_them():
    owner = set(Group.objects.get(name="Owner").permissions.values_list("codename", flat=True))
    reception = set(Group.objects.get(name="Receptionist").permissions.values_list("codename", flat=True))
    assert {"add_membership", "change_service", "delete_room", "add_apikey"} <= owner
    assert "view_service" in reception
    assert not {"add_membership", "change_service", "add_apikey"} & reception


def test_receptionist_books_and_edits_patients():
    reception = set(Group.objects.get(name="Receptionist").permissions.values_list("codename", flat=True))
    assert {"view_patient", "add_patient", "change_patient", "add_appointment", "change_appointment"} <= reception


def test_membership_puts_the_user_in_the_role_group_and_lets_them_into_the_admin(clinic):
    user = UserFactory()
    membership_set(clinic=clinic, user=user, role=Role.RECEPTIONIST)
    user.refresh_from_db()
    assert user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == ["Receptionist"]
    assert user.has_perm("patients.add_patient")
    assert not user.has_perm("clinic.add_membership")


def test_changing_or_ending_a_membership_updates_groups(clinic):
    user = UserFactory()
    membership_set(clinic=clinic, user=user, role=Role.RECEPTIONIST)
    membership_set(clinic=clinic, user=user, role=Role.OWNER)
    assert list(user.groups.values_list("name", flat=True)) == ["Owner"]
    membership_set(clinic=clinic, user=user, role=Role.OWNER, is_active=False)
    user.refresh_from_db()
    assert not user.groups.exists()
    assert not user.is_staff
