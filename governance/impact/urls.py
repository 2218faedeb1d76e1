"""Console routes of governance.impact (included by governance/urls.py)."""

from django.urls import URLPattern, path

from access import org_views

urlpatterns: list[URLPattern] = [
    # When a grant ends: set with the preview of its end (access/org_views.py, beside the members page's writes).
    path("o/<uuid:org_id>/members/<uuid:grant_id>/expiry", org_views.member_expiry, name="org-member-expiry"),
]
