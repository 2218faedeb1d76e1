from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's registration hook: these modules need the models, which are not loaded when apps.py is imported.
        from orgs import checks, kinds  # noqa: F401 - the deploy check of autovacuum (canopy.W001); the kind registry
