"""The three built-in roles as rows, so that grants can point at them. Their capabilities live in code
(access.roles.BUILTIN_ROLES), never in these rows."""

from django.db import migrations

BUILTIN = [
    ("admin", "Admin", "Manages members, projects, resources, settings and runtimes; sees the audit log."),
    ("integrator", "Integrator", "Builds and runs integrations: tasks, credentials and lookup tables."),
    ("guest", "Guest", "Views integration tasks, run logs and errors."),
]


def create_builtin_roles(apps, schema_editor):
    Role = apps.get_model("access", "Role")
    for key, name, description in BUILTIN:
        Role.objects.update_or_create(
            key=key, tenant=None, defaults={"name": name, "description": description, "org": None}
        )


def remove_builtin_roles(apps, schema_editor):
    # Only when no grant points at them (PROTECT would refuse otherwise, keeping data safe).
    apps.get_model("access", "Role").objects.filter(tenant=None, key__in=[k for k, _, _ in BUILTIN]).delete()


class Migration(migrations.Migration):
    dependencies = [("access", "0002_role_projectusergrant_projectteamgrant_orgusergrant_and_more")]

    operations = [migrations.RunPython(create_builtin_roles, remove_builtin_roles)]
