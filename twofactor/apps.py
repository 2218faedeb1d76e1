from django.apps import AppConfig


class TwoFactorConfig(AppConfig):
    """Second factors (TOTP and backup codes through django-otp) and the ``require_2fa`` setting's enforcement."""

    name = "twofactor"
    verbose_name = "Two-factor authentication"
    default_auto_field = "django.db.models.BigAutoField"
