from django.apps import AppConfig


class RuntimesConfig(AppConfig):
    """Global and local runtimes, registration, heartbeats and the run queue: built with the runtime issue."""

    name = "runtimes"
    default_auto_field = "django.db.models.BigAutoField"
