from django.apps import AppConfig


class ResourcesConfig(AppConfig):
    """Shared resources: tasks and runs, credentials, lookup tables, components, environment variables, settings."""

    name = "resources"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from resources import checks, receivers  # noqa: F401 - registers the system check and signal receivers
