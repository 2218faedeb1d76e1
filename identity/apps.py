from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Single sign-on per tenant (OpenID Connect), claimed e-mail domains, break-glass codes, sign-in discovery."""

    name = "identity"
    verbose_name = "Identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from identity.models import TenantSSO
        from resources import crypto

        # The IdP client secrets are rotated with every other stored secret (rotate_encryption_keys).
        crypto.register_column(TenantSSO, "client_secret_ciphertext")
