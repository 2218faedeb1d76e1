from django.urls import path

from identity import api

urlpatterns = [
    path("tenants/<str:id>/sso", api.TenantSSOView.as_view(), name="api-tenant-sso"),
    path("tenants/<str:id>/sso/recovery-codes", api.RecoveryCodesView.as_view(), name="api-tenant-sso-recovery"),
    path("tenants/<str:id>/sso/unlinked-members", api.UnlinkedMembersView.as_view(), name="api-tenant-sso-unlinked"),
    path("tenants/<str:id>/domains", api.TenantDomainsView.as_view(), name="api-tenant-domains"),
    path("domains/<str:id>", api.DomainDetailView.as_view(), name="api-domain"),
    path("domains/<str:id>/verify", api.DomainVerifyView.as_view(), name="api-domain-verify"),
]
