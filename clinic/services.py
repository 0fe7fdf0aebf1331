"""Writes for clinic-wide models. Admin, API, commands and tasks all call these."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from clinic.api.authentication import ALL_SCOPES, api_key_digest, api_key_generate
from clinic.models import ApiKey, Clinic, Membership, Practitioner, User, WorkerHeartbeat
from clinic.security.roles import Role, group_name


@transaction.atomic
def user_sync_groups(*, user: User) -> None:
    """Groups (and admin access) follow the user's active memberships."""
    roles = set(Membership.objects.filter(user=user, is_active=True).values_list("role", flat=True))
    user.groups.set(Group.objects.filter(name__in=[group_name(r) for r in roles]))
    is_staff = bool(roles) or user.is_superuser
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


@transaction.atomic
def membership_set(*, clinic: Clinic, user: User, role: Role | str, is_active: bool = True) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        clinic=clinic, user=user, defaults={"role": Role(role), "is_active": is_active}
    )
    membership.full_clean()
    user_sync_groups(user=user)
    return membership


@transaction.atomic
def practitioner_create(
    *, clinic: Clinic, user: User, display_name: str, modalities=(), services=(), registration_number: str = ""
) -> Practitioner:
    practitioner = Practitioner(
        clinic=clinic, user=user, display_name=display_name, registration_number=registration_number
    )
    practitioner.full_clean()
    practitioner.save()
    practitioner.modalities.set(modalities)
    practitioner.services.set(services)
    if not Membership.objects.filter(clinic=clinic, user=user).exists():
        membership_set(clinic=clinic, user=user, role=Role.THERAPIST)
    return practitioner


def heartbeat_record(*, name: str = "worker") -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})
    return heartbeat


@transaction.atomic
def api_key_create(*, clinic: Clinic, name: str, scopes: list[str], created_by: User | None = None):
    """Create a key; return (ApiKey, raw key). Only the digest is stored."""
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown or not scopes:
        raise ValueError(f"Unknown scopes: {', '.join(unknown)}" if unknown else "At least one scope is needed.")
    raw, prefix = api_key_generate()
    key = ApiKey(
        clinic=clinic,
        name=name,
        prefix=prefix,
        digest=api_key_digest(raw),
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    key.full_clean()
    key.save()
    return key, raw


def api_key_revoke(*, key) -> None:
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now, updated_at=now)
