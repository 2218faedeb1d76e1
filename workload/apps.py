from django.apps import AppConfig


class WorkloadConfig(AppConfig):
    """Canopy as an OpenID Connect issuer of workload identity tokens for runs: signing keys, JWKS, discovery."""

    name = "workload"
    verbose_name = "Workload identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's registration hook (the check reads settings only; importing it here registers it).
        from workload import checks  # noqa: F401
