"""Staff roles and the Django groups and permissions that carry them.

Each app declares what each role may do with its models in its AppConfig
(`role_permissions`), so adding a model never means editing a central table in
another app. `sync_role_groups()` turns those declarations into the three
groups; a migration creates the groups and a post_migrate hook keeps their
permissions in step as apps add models.
"""

from __future__ import annotations

from django.apps import apps
from django.db import models

ALL_ACTIONS = ("view", "add", "change", "delete")


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    THERAPIST = "therapist", "Therapist"
    RECEPTIONIST = "receptionist", "Receptionist"


ALL_ROLES = frozenset(Role)
CLINICAL_ROLES = frozenset({Role.OWNER, Role.THERAPIST})
OWNERS = frozenset({Role.OWNER})


def group_name(role: str) -> str:
    return Role(role).label


def declared_permissions() -> dict[str, set[tuple[str, str]]]:
    """Role -> {(app_label, codename)} from every app's `role_permissions`."""
    result: dict[str, set[tuple[str, str]]] = {role.value: set() for role in Role}
    for config in apps.get_app_configs():
        declared = getattr(config, "role_permissions", None) or {}
        for role, models_actions in declared.items():
            for model_name, actions in models_actions.items():
                everything = [m._meta.model_name for m in config.get_models()]
                model_names = everything if model_name == "*" else [model_name]
                for name in model_names:
                    for action in actions:
                        result[Role(role).value].add((config.label, f"{action}_{name}"))
    return result


def sync_role_groups(**kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    wanted = declared_permissions()
    for role in Role:
        group, _ = Group.objects.get_or_create(name=group_name(role))
        pairs = wanted[role.value]
        labels = {app_label for app_label, _ in pairs}
        perms = [
            p
            for p in Permission.objects.filter(content_type__app_label__in=labels).select_related("content_type")
            if (p.content_type.app_label, p.codename) in pairs
        ]
        group.permissions.set(perms)
