from django.urls import path

from orgs import api

urlpatterns = [
    path("tenants", api.TenantListView.as_view(), name="api-tenants"),
    path("tenants/<uuid:id>", api.TenantDetailView.as_view(), name="api-tenant"),
    path("orgs", api.OrgListView.as_view(), name="api-orgs"),
    path("orgs/<uuid:id>", api.OrgDetailView.as_view(), name="api-org"),
    path("orgs/<uuid:id>/restore", api.OrgRestoreView.as_view(), name="api-org-restore"),
    path("orgs/<uuid:id>/move", api.OrgMoveView.as_view(), name="api-org-move"),
    path("orgs/<uuid:id>/children", api.OrgChildrenView.as_view(), name="api-org-children"),
    path("orgs/<uuid:id>/projects", api.OrgProjectsView.as_view(), name="api-org-projects"),
    path("projects/<uuid:id>", api.ProjectDetailView.as_view(), name="api-project"),
]
