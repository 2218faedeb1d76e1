from django.apps import AppConfig


class ResourcesConfig(AppConfig):
    """Shared resources (tasks, credentials, lookup tables, components, env vars, settings): see issue #4."""

    name = "resources"
    default_auto_field = "django.db.models.BigAutoField"
