"""System check, deploy only: clouds trust an issuer only at an https:// address (AWS, Google and Vault fetch
``<issuer>/.well-known/openid-configuration`` over TLS), so a plain-http issuer mints tokens nobody can use."""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def https_issuer(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    parts = urlsplit(settings.WORKLOAD_IDENTITY_ISSUER)
    if parts.scheme == "https" and parts.netloc and not parts.query and not parts.fragment:
        return []
    return [
        Warning(
            f"WORKLOAD_IDENTITY_ISSUER ({settings.WORKLOAD_IDENTITY_ISSUER!r}) is not an https:// address without "
            "query or fragment: clouds and Vault will not trust workload identity tokens from it.",
            hint="Set SITE_URL, or WORKLOAD_IDENTITY_ISSUER, to Canopy's public https:// address (README.md, "
            "Workload identity).",
            id="workload.W001",
        )
    ]
