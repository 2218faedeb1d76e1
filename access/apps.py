from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules

from access.roles import ensure_builtin_roles


def _builtin_roles_after_migrate(
    sender: AppConfig, *, using: str = DEFAULT_DB_ALIAS, apps: Any = global_apps, **kwargs: Any
) -> None:
    try:
        apps.get_model("access", "Role")
    except LookupError:  # migrated backwards past the roles table
        return
    ensure_builtin_roles(using=using, apps=apps)


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
        # ... and its fences.py registers what closes parts of a tenant to a request by how it authenticated
        # (access/fences.py: single sign-on enforcement, required second factor).
        autodiscover_modules("fences")
        from django.contrib.auth.signals import user_logged_in

        from access.fences import on_user_logged_in

        user_logged_in.connect(on_user_logged_in, dispatch_uid="access.fences.logged_in")
        post_migrate.connect(_builtin_roles_after_migrate, sender=self, dispatch_uid="access.builtin_roles")
