from django.urls import path

from orgs import api

urlpatterns = [
    path("tenants", api.TenantListView.as_view(), name="api-tenants"),
    path("tenants/<str:id>", api.TenantDetailView.as_view(), name="api-tenant"),
    path("orgs", api.OrgListView.as_view(), name="api-orgs"),
    path("orgs/<str:id>", api.OrgDetailView.as_view(), name="api-org"),
    path("orgs/<str:id>/restore", api.OrgRestoreView.as_view(), name="api-org-restore"),
    path("orgs/<str:id>/move", api.OrgMoveView.as_view(), name="api-org-move"),
    path("orgs/<str:id>/children", api.OrgChildrenView.as_view(), name="api-org-children"),
    path("orgs/<str:id>/projects", api.OrgProjectsView.as_view(), name="api-org-projects"),
    path("projects/<str:id>", api.ProjectDetailView.as_view(), name="api-project"),
]
