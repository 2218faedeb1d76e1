from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "Access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's registration hook: checks.py needs the models, which are not loaded when apps.py is imported.
        from access import checks  # noqa: F401 - registers the deploy check of the cache

        # Every installed app's kinds.py registers the kinds the policy decides on (config/kinds.py), as admin.py
        # registers admin classes: a new app with a new kind adds that one module, and no line here or elsewhere.
        autodiscover_modules("kinds")
        # ... and its faces.py attaches the kind's own form, serializers and services to the generic faces.
        autodiscover_modules("faces")
