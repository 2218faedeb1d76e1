"""API routes of governance.review under /api/v1/ (included by governance/api_urls.py)."""

from django.urls import path

from governance.review import api

urlpatterns = [
    path("orgs/<id:id>/review", api.ReviewView.as_view(), name="api-org-review"),
    path("orgs/<id:id>/review/attest", api.ReviewAttestView.as_view(), name="api-org-review-attest"),
    path("orgs/<id:id>/review/revoke", api.ReviewRevokeView.as_view(), name="api-org-review-revoke"),
]
