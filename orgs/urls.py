from django.urls import path

from orgs import views

urlpatterns = [
    path("", views.home, name="home"),
    path("switch/", views.switch, name="switch"),
    path("o/<uuid:org_id>/", views.org_overview, name="org"),
    path("o/<uuid:org_id>/new/", views.org_create, name="org-create"),
    path("o/<uuid:org_id>/edit/", views.org_edit, name="org-edit"),
    path("o/<uuid:org_id>/move/", views.org_move, name="org-move"),
    path("o/<uuid:org_id>/delete/", views.org_delete, name="org-delete"),
    path("o/<uuid:org_id>/deleted/", views.org_deleted, name="org-deleted"),
    path("o/<uuid:org_id>/restore/", views.org_restore, name="org-restore"),
    path("o/<uuid:org_id>/projects/new/", views.project_create, name="project-create"),
    path("o/<uuid:org_id>/p/<uuid:project_id>/", views.project_detail, name="project"),
    path("o/<uuid:org_id>/p/<uuid:project_id>/edit/", views.project_edit, name="project-edit"),
    path("o/<uuid:org_id>/p/<uuid:project_id>/delete/", views.project_delete, name="project-delete"),
]
