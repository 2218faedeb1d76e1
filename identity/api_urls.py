from django.urls import path

from identity import api

urlpatterns = [
    path("tenants/<uuid:id>/sso", api.TenantSSOView.as_view(), name="api-tenant-sso"),
    path("tenants/<uuid:id>/sso/recovery-codes", api.RecoveryCodesView.as_view(), name="api-tenant-sso-recovery"),
    path("tenants/<uuid:id>/sso/unlinked-members", api.UnlinkedMembersView.as_view(), name="api-tenant-sso-unlinked"),
    path("tenants/<uuid:id>/domains", api.TenantDomainsView.as_view(), name="api-tenant-domains"),
    path("domains/<uuid:id>", api.DomainDetailView.as_view(), name="api-domain"),
    path("domains/<uuid:id>/verify", api.DomainVerifyView.as_view(), name="api-domain-verify"),
]
