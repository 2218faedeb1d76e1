"""API routes of governance.rollup under /api/v1/ (included by governance/api_urls.py)."""

from django.urls import URLPattern, path

from governance.rollup import api

urlpatterns: list[URLPattern] = [
    path("orgs/<id:id>/rollup", api.OrgRollupView.as_view(), name="api-org-rollup"),
]
