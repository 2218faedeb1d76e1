"""The console's resource URLs. The list and detail pages of every declared kind with console pages (a console form
and console URL names in its registry entry) are generated from the registry, at ``o/<org>/<list name>/`` and
``o/<org>/<list name>/<item>/``: a new kind needs no line here. The rest are pages of their own."""

from django.urls import URLPattern, path

from resources import views


def declared_kind_patterns() -> list[URLPattern]:
    """Each declared kind's list and detail page, named by its entry's ``console_list`` and ``console_detail``."""
    patterns = []
    for kind in views.console_kinds():
        list_view, detail_view = views.declared_views(kind)
        patterns += [
            path(f"o/<uuid:org_id>/{kind.console_list}/", list_view, name=kind.console_list),
            path(f"o/<uuid:org_id>/{kind.console_list}/<uuid:item_id>/", detail_view, name=kind.console_detail),
        ]
    return patterns


urlpatterns = [
    *declared_kind_patterns(),
    path(
        "o/<uuid:org_id>/lookup-tables/<uuid:item_id>/export.csv",
        views.lookup_table_export,
        name="lookup-table-export",
    ),
    path("o/<uuid:org_id>/settings/", views.org_settings, name="org-settings"),
    path("o/<uuid:org_id>/p/<uuid:project_id>/tasks/", views.tasks, name="tasks"),
    path("o/<uuid:org_id>/tasks/<uuid:task_id>/", views.task_detail, name="task"),
    path("o/<uuid:org_id>/runs/<uuid:run_id>/", views.run_detail, name="run"),
    path("shared/", views.shared_with_me, name="shared-with-me"),
]
