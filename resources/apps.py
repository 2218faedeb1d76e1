from django.apps import AppConfig


class ResourcesConfig(AppConfig):
    """Shared resources: tasks and runs, credentials, lookup tables, components, environment variables, settings."""

    name = "resources"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's registration hook: these modules need the models, which are not loaded when apps.py is imported.
        # (resources/kinds.py is found by access's autodiscovery, like admin.py.)
        from resources import checks, receivers  # noqa: F401 - the system check and the signal receivers
