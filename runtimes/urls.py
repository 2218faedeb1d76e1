"""The console's runtime pages. Their URL names are the runtime kind's ``console_list`` and ``console_detail``
(runtimes/kinds.py), so the org's navigation shows a Runtimes tab (orgs.navigation.kind_tabs)."""

from django.urls import path

from runtimes import views

urlpatterns = [
    path("o/<uuid:org_id>/runtimes/", views.runtimes, name="runtimes"),
    path("o/<uuid:org_id>/runtimes/<uuid:runtime_id>/", views.runtime_detail, name="runtime"),
]
