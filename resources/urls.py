from django.urls import path

from resources import views

urlpatterns = [
    path("o/<uuid:org_id>/credentials/", views.credentials, name="credentials"),
    path("o/<uuid:org_id>/credentials/<uuid:item_id>/", views.credential_detail, name="credential"),
    path("o/<uuid:org_id>/lookup-tables/", views.lookup_tables, name="lookup-tables"),
    path("o/<uuid:org_id>/lookup-tables/<uuid:item_id>/", views.lookup_table_detail, name="lookup-table"),
    path(
        "o/<uuid:org_id>/lookup-tables/<uuid:item_id>/export.csv",
        views.lookup_table_export,
        name="lookup-table-export",
    ),
    path("o/<uuid:org_id>/env-vars/", views.env_vars, name="env-vars"),
    path("o/<uuid:org_id>/env-vars/<uuid:item_id>/", views.env_var_detail, name="env-var"),
    path("o/<uuid:org_id>/components/", views.components, name="components"),
    path("o/<uuid:org_id>/components/<uuid:item_id>/", views.component_detail, name="component"),
    path("o/<uuid:org_id>/settings/", views.org_settings, name="org-settings"),
    path("o/<uuid:org_id>/p/<uuid:project_id>/tasks/", views.tasks, name="tasks"),
    path("o/<uuid:org_id>/tasks/<uuid:task_id>/", views.task_detail, name="task"),
    path("o/<uuid:org_id>/runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("shared/", views.shared_with_me, name="shared-with-me"),
]
