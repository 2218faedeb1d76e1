from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's registration hook: checks.py needs the models, which are not loaded when apps.py is imported.
        # (orgs/kinds.py is found by access's autodiscovery, like admin.py.)
        from orgs import checks  # noqa: F401 - registers the deploy check of autovacuum (canopy.W001)
