from django.contrib.admin.apps import AdminConfig


class CanopyAdminConfig(AdminConfig):
    """django.contrib.admin with Canopy's site (config.admin.CanopyAdminSite) as ``admin.site``."""

    default_site = "config.admin.CanopyAdminSite"
