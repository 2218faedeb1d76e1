from django.urls import path

from orgs import api

urlpatterns = [
    path("tenants", api.TenantListView.as_view(), name="api-tenants"),
    path("tenants/<id:id>", api.TenantDetailView.as_view(), name="api-tenant"),
    path("orgs", api.OrgListView.as_view(), name="api-orgs"),
    path("orgs/<id:id>", api.OrgDetailView.as_view(), name="api-org"),
    path("orgs/<id:id>/restore", api.OrgRestoreView.as_view(), name="api-org-restore"),
    path("orgs/<id:id>/move", api.OrgMoveView.as_view(), name="api-org-move"),
    path("orgs/<id:id>/children", api.OrgChildrenView.as_view(), name="api-org-children"),
    path("orgs/<id:id>/projects", api.OrgProjectsView.as_view(), name="api-org-projects"),
    path("projects/<id:id>", api.ProjectDetailView.as_view(), name="api-project"),
]
