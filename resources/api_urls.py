"""/api/v1/ routes of the resources app. Every declared kind with API URL names and a read serializer in the registry
(config.kinds, resources.api.declared_kinds) gets its list/create and detail routes here, generated: a new kind
needs no line in this file. The routes below them are the kinds' extras (rows and CSV, teams and versions,
component variables), hides, settings, tasks and runs."""

from django.urls import URLPattern, path

from resources import api


def declared_kind_patterns() -> list[URLPattern]:
    """``orgs/<id>/<segment>`` (list, create) and ``<segment>/<id>`` (detail) of every declared kind, named by its
    registry entry (``api_list``, ``api_detail``); the segment is the list name without ``api-org-``."""
    patterns = []
    for kind in api.declared_kinds():
        list_view, detail_view = api.declared_views(kind)
        segment = api.api_segment(kind)
        patterns += [
            path(f"orgs/<id:id>/{segment}", list_view.as_view(), name=kind.api_list),
            path(f"{segment}/<id:id>", detail_view.as_view(), name=kind.api_detail),
        ]
    return patterns


urlpatterns = [
    *declared_kind_patterns(),
    path("lookup-tables/<id:id>/rows", api.LookupTableRowsView.as_view(), name="api-lookup-table-rows"),
    path("lookup-tables/<id:id>/export", api.LookupTableExportView.as_view(), name="api-lookup-table-export"),
    path("lookup-tables/<id:id>/import", api.LookupTableImportView.as_view(), name="api-lookup-table-import"),
    path("components", api.MyComponentsView.as_view(), name="api-components"),
    path("components/<id:id>/team", api.ComponentTeamView.as_view(), name="api-component-team"),
    path(
        "components/<id:id>/team/<id:user_id>",
        api.ComponentTeamMemberView.as_view(),
        name="api-component-team-member",
    ),
    path("components/<id:id>/versions", api.ComponentVersionsView.as_view(), name="api-component-versions"),
    path("components/<id:id>/env-vars", api.ComponentEnvVarsView.as_view(), name="api-component-env-vars"),
    path("orgs/<id:id>/hidden", api.OrgHiddenView.as_view(), name="api-org-hidden"),
    path("hidden/<id:id>", api.HiddenDetailView.as_view(), name="api-hidden"),
    path("orgs/<id:id>/settings", api.OrgSettingsView.as_view(), name="api-org-settings"),
    path("orgs/<id:id>/settings/<str:key>", api.OrgSettingDetailView.as_view(), name="api-org-setting"),
    path("orgs/<id:id>/effective-config", api.EffectiveConfigView.as_view(), name="api-org-effective-config"),
    path("projects/<id:id>/tasks", api.ProjectTasksView.as_view(), name="api-project-tasks"),
    path("tasks/<id:id>", api.TaskDetailView.as_view(), name="api-task"),
    path("tasks/<id:id>/run", api.TaskRunView.as_view(), name="api-task-run"),
    path("tasks/<id:id>/runs", api.TaskRunsView.as_view(), name="api-task-runs"),
    path("tasks/<id:id>/shares", api.TaskSharesView.as_view(), name="api-task-shares"),
    path("tasks/<id:id>/shares/<id:share_id>", api.TaskShareDetailView.as_view(), name="api-task-share"),
    path("runs/<id:id>", api.RunDetailView.as_view(), name="api-run"),
    path("runs/<id:id>/stop", api.RunStopView.as_view(), name="api-run-stop"),
    path("runs/<id:id>/logs", api.RunLogsView.as_view(), name="api-run-logs"),
]
