from django.urls import path

from identity import api

urlpatterns = [
    path("tenants/<id:id>/sso", api.TenantSSOView.as_view(), name="api-tenant-sso"),
    path("tenants/<id:id>/sso/recovery-codes", api.RecoveryCodesView.as_view(), name="api-tenant-sso-recovery"),
    path("tenants/<id:id>/sso/unlinked-members", api.UnlinkedMembersView.as_view(), name="api-tenant-sso-unlinked"),
    path("tenants/<id:id>/domains", api.TenantDomainsView.as_view(), name="api-tenant-domains"),
    path("domains/<id:id>", api.DomainDetailView.as_view(), name="api-domain"),
    path("domains/<id:id>/verify", api.DomainVerifyView.as_view(), name="api-domain-verify"),
]
