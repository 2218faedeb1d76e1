from django.urls import path

from resources import api

urlpatterns = [
    path("orgs/<str:id>/credentials", api.OrgCredentialsView.as_view(), name="api-org-credentials"),
    path("credentials/<str:id>", api.CredentialDetailView.as_view(), name="api-credential"),
    path("orgs/<str:id>/lookup-tables", api.OrgLookupTablesView.as_view(), name="api-org-lookup-tables"),
    path("lookup-tables/<str:id>", api.LookupTableDetailView.as_view(), name="api-lookup-table"),
    path("lookup-tables/<str:id>/export", api.LookupTableExportView.as_view(), name="api-lookup-table-export"),
    path("lookup-tables/<str:id>/import", api.LookupTableImportView.as_view(), name="api-lookup-table-import"),
    path("orgs/<str:id>/env-vars", api.OrgEnvVarsView.as_view(), name="api-org-env-vars"),
    path("env-vars/<str:id>", api.EnvVarDetailView.as_view(), name="api-env-var"),
    path("orgs/<str:id>/components", api.OrgComponentsView.as_view(), name="api-org-components"),
    path("components", api.MyComponentsView.as_view(), name="api-components"),
    path("components/<str:id>", api.ComponentDetailView.as_view(), name="api-component"),
    path("components/<str:id>/team", api.ComponentTeamView.as_view(), name="api-component-team"),
    path("components/<str:id>/versions", api.ComponentVersionsView.as_view(), name="api-component-versions"),
    path("components/<str:id>/env-vars", api.ComponentEnvVarsView.as_view(), name="api-component-env-vars"),
    path("orgs/<str:id>/hidden", api.OrgHiddenView.as_view(), name="api-org-hidden"),
    path("hidden/<str:id>", api.HiddenDetailView.as_view(), name="api-hidden"),
    path("orgs/<str:id>/settings", api.OrgSettingsView.as_view(), name="api-org-settings"),
    path("orgs/<str:id>/settings/<str:key>", api.OrgSettingDetailView.as_view(), name="api-org-setting"),
    path("orgs/<str:id>/effective-config", api.EffectiveConfigView.as_view(), name="api-org-effective-config"),
    path("projects/<str:id>/tasks", api.ProjectTasksView.as_view(), name="api-project-tasks"),
    path("tasks/<str:id>", api.TaskDetailView.as_view(), name="api-task"),
    path("tasks/<str:id>/run", api.TaskRunView.as_view(), name="api-task-run"),
    path("tasks/<str:id>/runs", api.TaskRunsView.as_view(), name="api-task-runs"),
    path("tasks/<str:id>/shares", api.TaskSharesView.as_view(), name="api-task-shares"),
    path("tasks/<str:id>/shares/<str:share_id>", api.TaskShareDetailView.as_view(), name="api-task-share"),
    path("runs/<str:id>", api.RunDetailView.as_view(), name="api-run"),
    path("runs/<str:id>/stop", api.RunStopView.as_view(), name="api-run-stop"),
    path("runs/<str:id>/logs", api.RunLogsView.as_view(), name="api-run-logs"),
]
