from django.contrib.admin.apps import AdminConfig

# Registers the API's <id:…> path converter when the apps load, before any URLconf is read.
from config import converters  # noqa: F401


class CanopyAdminConfig(AdminConfig):
    """django.contrib.admin with Canopy's site (config.admin.CanopyAdminSite) as ``admin.site``."""

    default_site = "config.admin.CanopyAdminSite"
