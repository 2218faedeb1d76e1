"""/api/v1/ routes of runtimes (docs/API.md "Runtimes"); the agents' own API is runtimes/agent_urls.py."""

from django.urls import path

from runtimes import api

urlpatterns = [
    path("orgs/<id:id>/runtimes", api.OrgRuntimesView.as_view(), name="api-org-runtimes"),
    path("runtimes", api.GlobalRuntimesView.as_view(), name="api-runtimes"),
    path("runtimes/<id:id>", api.RuntimeDetailView.as_view(), name="api-runtime"),
    path(
        "runtimes/<id:id>/enrollment-tokens",
        api.RuntimeEnrollmentTokensView.as_view(),
        name="api-runtime-enrollment-tokens",
    ),
    path("runtimes/<id:id>/revoke", api.RuntimeRevokeView.as_view(), name="api-runtime-revoke"),
    path("runtimes/<id:id>/instances", api.RuntimeInstancesView.as_view(), name="api-runtime-instances"),
]
