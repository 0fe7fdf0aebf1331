"""Create the three staff role groups. Their permissions follow each app's
`role_permissions` and are kept in step after every migrate (clinic.security.roles)."""

from django.db import migrations

ROLE_GROUPS = ["Owner", "Therapist", "Receptionist"]


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
