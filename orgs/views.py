"""The console's organization and project pages (/o/<org-uuid>/…).

Every view fetches and authorizes through config.console (the policy answers: 404 when the object is not visible
or deleted, 403 when it is visible but the capability is missing) and writes through orgs.services with
config.console.dispatch, which maps every refusal the same way (see config/console.py).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, F, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from access import policy
from config.console import (
    Confirm,
    Undo,
    Write,
    confirm_page,
    console_view,
    dispatch,
    fetch_org,
    fetch_project,
    form_page,
    goes_with,
    opened,
    render_org_page,
)
from config.errors import NotFound
from config.listing import paginate, search, search_term
from governance.impact import org_changes
from orgs import navigation, services
from orgs.forms import MoveForm, OrgEditForm, OrgForm, ProjectEditForm, ProjectForm
from orgs.models import Organization, Project
from resources.models import Component

# -- landing and switching -----------------------------------------------------------------------------------------


@console_view
def home(request: HttpRequest) -> HttpResponse:
    """The landing page: the org used last if still visible, else the first the user may open."""
    visible = policy.visible(request.user, "org.view", Organization.objects.alive())
    org = None
    if request.user.last_org_id:
        org = visible.filter(pk=request.user.last_org_id).only("pk").first()
    if org is None:
        org = visible.order_by("tree_id", "lft").only("pk").first()
    if org is not None:
        return redirect("org", org_id=org.pk)
    # Someone with a grant on a project only (no org): offer their projects instead of an empty page; a contractor
    # on a component's development team: their components.
    projects = policy.visible(request.user, "project.view", Project.objects.filter(org__deleted_at__isnull=True))
    components = policy.visible(request.user, "component.view", Component.objects.all())
    return render(
        request,
        "orgs/no_org.html",
        {
            "projects": projects.select_related("org").order_by("name")[:50],
            "components": components.select_related("org").order_by("name")[:50],
        },
    )


@console_view
def switch(request: HttpRequest) -> HttpResponse:
    """The switcher as a page, for searching without JavaScript (and beyond the cap of the drop-down list)."""
    result = navigation.switcher(request.user, request.GET.get("q", ""))
    if result.query:
        navigation.attach_trails(result.orgs)
    return render(request, "orgs/switch.html", {"result": result, "current_id": request.user.last_org_id})


# -- organizations -------------------------------------------------------------------------------------------------


@console_view
def org_overview(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id)
    children = paginate(request, list(org.children.alive().order_by("name")), param="children")
    visible = policy.visible(request.user, "project.view", org.projects.all())
    projects = paginate(request, search(visible, search_term(request), ["name", "description"]).order_by("name"))
    return render_org_page(request, "orgs/overview.html", org, children=children, projects=projects)


@console_view
def org_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    parent = fetch_org(request, org_id, "org.create_child")
    if not parent.tenant.allows_child_orgs:
        # The Free plan: explain how to upgrade rather than offer a form that can only be refused.
        messages.error(request, services.UPGRADE_HINT)
        return redirect("org", org_id=parent.pk)
    write = Write(
        run=lambda d: services.create_org(actor=request.user, parent=parent, name=d["name"],
                                          description=d["description"]),
        then=lambda org: reverse("org", args=[org.pk]), done="The organization was created.",
        form=OrgForm, form_key="form",
    )  # fmt: skip
    return form_page(
        request, parent, write, OrgForm(), title=f"New organization in {parent.name}", submit="Create organization"
    )


@console_view
def org_edit(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "org.manage")

    def form(*args: Any) -> OrgEditForm:
        return OrgEditForm(*args, org=org)

    def fields_of(d: dict[str, Any]) -> dict[str, Any]:
        return {k: d[k] for k in ("name", "description", "access_inheritance") if k in d}

    def update(d: dict[str, Any]) -> Organization:
        fields = fields_of(d)
        if org_changes.is_structural(org, fields):
            # The confirmed change of access inheritance: made with its preview, whose summary the audit keeps.
            return org_changes.apply_update(actor=request.user, org=org, version=d["version"], **fields)[0]
        return services.update_org(actor=request.user, org=org, version=d["version"], **fields)

    def confirm(d: dict[str, Any]) -> Confirm | None:
        """A change of access inheritance is shown before it is made (who gains and who loses access where); a
        rename or a new description goes straight through."""
        fields = fields_of(d)
        if not org_changes.is_structural(org, fields):
            return None
        impact = org_changes.preview_update(actor=request.user, org=org, version=d["version"], **fields)
        return Confirm(
            title=f"{impact.change}?", button="Save", cancel=reverse("org-edit", args=[org.pk]), impact=impact,
            note="It applies at once to everything below; invitations their inviter no longer backs there end.",
        )  # fmt: skip

    initial = opened(org, name=org.name, description=org.description, access_inheritance=org.access_inheritance)
    write = Write(
        run=update, then=lambda result: reverse("org", args=[org.pk]), done="Your changes were saved.",
        form=form, form_key="form", confirm=confirm,
    )  # fmt: skip
    return form_page(
        request, org, write, OrgEditForm(initial=initial, org=org), title=f"Edit {org.name}", submit="Save"
    )


@console_view
def org_move(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
    if org.is_root:
        messages.error(request, "The root organization cannot be moved.")
        return redirect("org", org_id=org.pk)

    def confirm(d: dict[str, Any]) -> Confirm | None:
        """What the move would do, shown before it is made (nothing to ask when the parent stays)."""
        if d["parent"].pk == org.parent_id:
            return None
        impact = org_changes.preview_move(actor=request.user, org=org, parent=d["parent"], version=d["version"])
        return Confirm(
            title=f"{impact.change}?", button="Move", cancel=reverse("org-move", args=[org.pk]), impact=impact,
            note="Everything below it moves too, at once; invitations their inviter no longer backs there end.",
        )  # fmt: skip

    write = Write(
        run=lambda d: org_changes.apply_move(actor=request.user, org=org, parent=d["parent"],
                                             version=d["version"])[0],
        then=lambda result: reverse("org", args=[org.pk]), done=f"{org.name} was moved.",
        form=lambda *a: MoveForm(*a, org=org), form_key="form", confirm=confirm,
    )  # fmt: skip
    initial = MoveForm(initial=opened(org, parent=org.parent_id), org=org)
    return form_page(request, org, write, initial, title=f"Move {org.name}", submit="Move")


@console_view
def org_delete(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
    if org.is_root:
        messages.error(request, "The root organization cannot be deleted.")
        return redirect("org", org_id=org.pk)

    def confirm(d: dict[str, Any]) -> Confirm:
        below = Organization.objects.alive().filter(org.descendants_q()).exclude(pk=org.pk).count()
        projects = Project.objects.filter(org__in=Organization.objects.alive().filter(org.descendants_q())).count()
        return Confirm(
            title=f"Delete {org.name}?", button=f"Delete {org.name}", cancel=reverse("org", args=[org.pk]),
            goes_with=[line for n, line in (
                (below, f"{below} organization{'s' if below != 1 else ''} below it"),
                (projects, f"{projects} project{'s' if projects != 1 else ''}, with their tasks and runs"),
            ) if n],
            note="They disappear from the console and the API. A tenant administrator can restore them whole from "
            f"“Deleted organizations” for {settings.ORG_RESTORE_WINDOW.days} days.",
        )  # fmt: skip

    write = Write(
        run=lambda d: services.delete_org(actor=request.user, org=org, version=d["version"]),
        then=lambda result: reverse("org", args=[org.parent_id]),
        done=f"{org.name} and everything below it were deleted. You can restore them.",
        confirm=confirm,
        undo=lambda node: Undo(reverse("org-restore", args=[node.pk]), {"action": "restore", "version": node.version}),
    )

    def show(context: dict[str, Any]) -> HttpResponse:
        fields = [("action", "delete"), ("version", org.version)]
        return confirm_page(request, confirm({}), fields, error=context.get("error", ""))

    return dispatch(request, {"delete": write}, show)


def _deleted_page(request: HttpRequest, org: Organization, context: dict[str, Any]) -> HttpResponse:
    """The tenant's deleted subtrees (one line per subtree), restorable within the window."""
    sizes = (
        Organization.objects.filter(deleted_with_id=OuterRef("pk"))
        .values("deleted_with_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    deleted = list(
        Organization.objects.filter(tenant_id=org.tenant_id, deleted_with_id=F("pk"))
        .select_related("parent")
        .annotate(size=Subquery(sizes))
        .order_by("-deleted_at")
    )
    window = settings.ORG_RESTORE_WINDOW
    for node in deleted:
        node.restorable_until = node.deleted_at + window
    return render_org_page(request, "orgs/deleted.html", org, deleted=deleted, error=context.get("error"))


@console_view
def org_deleted(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The tenant's deleted subtrees, for its administrators."""
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
    return _deleted_page(request, org, {})


@require_POST
@console_view
def org_restore(request: HttpRequest, org_id: UUID) -> HttpResponse:
    node = Organization.objects.deleted().select_related("tenant").filter(pk=org_id).first()
    # A deleted org is visible to its tenant's administrators only (and only here): everyone else gets 404.
    if node is None or not policy.is_tenant_admin(request.user, node.tenant_id):
        raise NotFound()
    root = Organization.objects.alive().select_related("tenant").get(tenant_id=node.tenant_id, parent__isnull=True)
    write = Write(
        run=lambda d: services.restore_org(actor=request.user, org=node, version=d["version"]),
        then=lambda result: reverse("org", args=[node.pk]),
        done=f"{node.name} is back, with everything that was deleted with it.",
    )
    return dispatch(request, {"restore": write}, lambda context: _deleted_page(request, root, context))


# -- projects ------------------------------------------------------------------------------------------------------


@console_view
def project_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "project.manage")
    write = Write(
        run=lambda d: services.create_project(actor=request.user, org=org, name=d["name"],
                                              description=d["description"]),
        then=lambda project: reverse("project", args=[org.pk, project.pk]), done="The project was created.",
        form=ProjectForm, form_key="form",
    )  # fmt: skip
    return form_page(request, org, write, ProjectForm(), title=f"New project in {org.name}", submit="Create project")


@console_view
def project_detail(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id)
    caps = policy.capabilities(request.user, project)
    return render_org_page(request, "orgs/project.html", project.org, project=project, project_caps=caps)


@console_view
def project_edit(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id, "project.manage")
    back = reverse("project", args=[org_id, project.pk])
    write = Write(
        run=lambda d: services.update_project(actor=request.user, project=project, name=d["name"],
                                              description=d["description"], version=d["version"]),
        then=lambda result: back, done="Your changes were saved.", form=ProjectEditForm, form_key="form",
    )  # fmt: skip
    initial = ProjectEditForm(initial=opened(project, name=project.name, description=project.description))
    return form_page(request, project.org, write, initial, title=f"Edit {project.name}", submit="Save", cancel=back)


@console_view
def project_delete(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id, "project.manage")

    def confirm(d: dict[str, Any]) -> Confirm:
        return Confirm(
            title=f"Delete project {project.name}?", button="Delete project", goes_with=goes_with(project),
            note="The project is deleted for good: this cannot be undone. A project that still holds tasks is not "
            "deleted: delete them first.", cancel=reverse("project", args=[org_id, project.pk]),
        )  # fmt: skip

    write = Write(
        run=lambda d: services.delete_project(actor=request.user, project=project, version=d["version"]),
        then=lambda result: reverse("org", args=[org_id]),
        done=f"Project {project.name} was deleted.",
        confirm=confirm,
    )

    def show(context: dict[str, Any]) -> HttpResponse:
        fields = [("action", "delete"), ("version", project.version)]
        return confirm_page(request, confirm({}), fields, error=context.get("error", ""))

    return dispatch(request, {"delete": write}, show)
