"""Console routes of governance.rollup (included by governance/urls.py)."""

from django.urls import URLPattern, path

from governance.rollup import views

urlpatterns: list[URLPattern] = [
    path("o/<uuid:org_id>/overview/", views.org_rollup, name="org-rollup"),
]
