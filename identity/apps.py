from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Single sign-on per tenant (OpenID Connect), claimed e-mail domains, break-glass codes, sign-in discovery."""

    name = "identity"
    verbose_name = "Identity"
    default_auto_field = "django.db.models.BigAutoField"
