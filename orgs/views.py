"""The console's organization and project pages (/o/<org-uuid>/…).

Every view fetches and authorizes through ``fetch_org``/``fetch_project`` (the policy answers: 404 when the object
is not visible or deleted, 403 when it is visible but the capability is missing) and writes through orgs.services;
the services' refusals become form errors or messages and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from access import policy
from access.services import remember_org
from config.errors import DomainError, Forbidden, NotFound
from orgs import navigation, services
from orgs.forms import MoveForm, OrgEditForm, OrgForm, ProjectForm
from orgs.models import Organization, Project

# -- the one way a console page fetches, authorizes and renders ----------------------------------------------------


def _authorized(user: Any, capability: str, queryset: Any, **lookup: Any) -> Any:
    """policy.get_for with the console's answers: Http404 (the 404 page) or PermissionDenied (the 403 page)."""
    try:
        return policy.get_for(user, capability, queryset, **lookup)
    except NotFound:
        raise Http404 from None
    except Forbidden as exc:
        raise PermissionDenied(exc.detail) from None


def fetch_org(request: HttpRequest, org_id: UUID, capability: str = "org.view") -> Organization:
    """The live org ``org_id`` if the user may see it (else 404) and holds ``capability`` there (else 403)."""
    return _authorized(request.user, capability, Organization.objects.alive().select_related("tenant"), pk=org_id)


def fetch_project(request: HttpRequest, org_id: UUID, project_id: UUID, capability: str = "project.view") -> Project:
    """The project, only under its own org's URL and only while that org is alive."""
    queryset = Project.objects.select_related("org__tenant").filter(org_id=org_id, org__deleted_at__isnull=True)
    return _authorized(request.user, capability, queryset, pk=project_id)


def render_org_page(request: HttpRequest, template: str, org: Organization, **context: Any) -> HttpResponse:
    """Render an org page with the breadcrumb and the switcher, and remember the org for the landing page."""
    remember_org(user=request.user, org=org)
    return render(request, template, navigation.context_for(request, org) | context)


def apply_errors(form: forms.Form, exc: Exception) -> None:
    """Show a service's refusal on the form: field errors where they belong, the rest on top."""
    if isinstance(exc, ValidationError):
        for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
            form.add_error(field if field in form.fields else None, errors)
    elif isinstance(exc, DomainError):
        form.add_error(None, exc.detail)


def _form_view(
    request: HttpRequest,
    org: Organization,
    form: forms.Form,
    action: Callable[[dict[str, Any]], Any],
    *,
    title: str,
    submit: str,
    success: Callable[[Any], str],
    done: str,
    cancel: str | None = None,
) -> HttpResponse:
    """GET shows the form; a valid POST calls the service; its refusal is shown on the form with status 400
    (the service changed nothing: it raises before writing, inside its transaction)."""
    if request.method == "POST" and form.is_valid():
        try:
            result = action(form.cleaned_data)
        except NotFound:
            raise Http404 from None
        except (ValidationError, DomainError) as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, done)
            return redirect(success(result))
    response = render_org_page(
        request,
        "orgs/form.html",
        org,
        form=form,
        title=title,
        submit=submit,
        cancel=cancel or reverse("org", args=[org.pk]),
    )
    response.status_code = 400 if request.method == "POST" else 200
    return response


# -- landing and switching -----------------------------------------------------------------------------------------


@login_required
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
    # Someone with a grant on a project only (no org): offer their projects instead of an empty page.
    projects = policy.visible(request.user, "project.view", Project.objects.filter(org__deleted_at__isnull=True))
    # A contractor on a component's development team: their components.
    from resources.models import Component

    components = policy.visible(request.user, "component.view", Component.objects.all())
    return render(
        request,
        "orgs/no_org.html",
        {
            "projects": projects.select_related("org").order_by("name")[:50],
            "components": components.select_related("org").order_by("name")[:50],
        },
    )


@login_required
def switch(request: HttpRequest) -> HttpResponse:
    """The switcher as a page, for searching without JavaScript (and beyond the cap of the drop-down list)."""
    result = navigation.switcher(request.user, request.GET.get("q", ""))
    if result.query:
        navigation.attach_trails(result.orgs)
    return render(request, "orgs/switch.html", {"result": result, "current_id": request.user.last_org_id})


# -- organizations -------------------------------------------------------------------------------------------------


@login_required
def org_overview(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id)
    children = list(org.children.alive().order_by("name"))
    projects = list(policy.visible(request.user, "project.view", org.projects.all()).order_by("name"))
    return render_org_page(request, "orgs/overview.html", org, children=children, projects=projects)


@login_required
def org_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    parent = fetch_org(request, org_id, "org.create_child")
    if not parent.tenant.allows_child_orgs:
        # The Free plan: explain how to upgrade rather than offer a form that can only be refused.
        messages.error(request, services.UPGRADE_HINT)
        return redirect("org", org_id=parent.pk)
    return _form_view(
        request,
        parent,
        OrgForm(request.POST or None),
        lambda data: services.create_org(actor=request.user, parent=parent, **data),
        title=f"New organization in {parent.name}",
        submit="Create organization",
        success=lambda org: reverse("org", args=[org.pk]),
        done="The organization was created.",
    )


@login_required
def org_edit(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "org.manage")
    initial = {
        "name": org.name,
        "description": org.description,
        "access_inheritance": org.access_inheritance,
    }
    return _form_view(
        request,
        org,
        OrgEditForm(request.POST or None, initial=initial, org=org),
        lambda data: services.update_org(actor=request.user, org=org, **data),
        title=f"Edit {org.name}",
        submit="Save",
        success=lambda result: reverse("org", args=[org.pk]),
        done="Your changes were saved.",
    )


@login_required
def org_move(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
    if org.is_root:
        messages.error(request, "The root organization cannot be moved.")
        return redirect("org", org_id=org.pk)
    return _form_view(
        request,
        org,
        MoveForm(request.POST or None, initial={"parent": org.parent_id}, org=org),
        lambda data: services.move_org(actor=request.user, org=org, parent=data["parent"]),
        title=f"Move {org.name}",
        submit="Move",
        success=lambda result: reverse("org", args=[org.pk]),
        done=f"{org.name} was moved.",
    )


@login_required
def org_delete(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
    if request.method == "POST":
        try:
            services.delete_org(actor=request.user, org=org)
        except NotFound:
            raise Http404 from None
        except DomainError as exc:
            messages.error(request, exc.detail)
            return redirect("org", org_id=org.pk)
        messages.success(request, f"{org.name} and everything below it were deleted. You can restore them.")
        return redirect("org", org_id=org.parent_id)
    if org.is_root:
        messages.error(request, "The root organization cannot be deleted.")
        return redirect("org", org_id=org.pk)
    size = Organization.objects.alive().filter(org.descendants_q()).count()
    return render_org_page(
        request,
        "orgs/confirm_delete.html",
        org,
        title=f"Delete {org.name}?",
        what=f"{size} organization{'s' if size != 1 else ''}",
        explanation="This organization, everything below it and their projects disappear from the console and the "
        f"API. A tenant administrator can restore them whole from “Deleted organizations” for "
        f"{settings.ORG_RESTORE_WINDOW.days} days.",
        cancel=reverse("org", args=[org.pk]),
    )


@login_required
def org_deleted(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The tenant's deleted subtrees (one line per subtree), restorable within the window (tenant administrators)."""
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
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
    return render_org_page(request, "orgs/deleted.html", org, deleted=deleted)


@require_POST
@login_required
def org_restore(request: HttpRequest, org_id: UUID) -> HttpResponse:
    node = Organization.objects.deleted().select_related("tenant").filter(pk=org_id).first()
    # A deleted org is visible to its tenant's administrators only (and only here): everyone else gets 404.
    if node is None or not policy.is_tenant_admin(request.user, node.tenant_id):
        raise Http404
    try:
        services.restore_org(actor=request.user, org=node)
    except NotFound:
        raise Http404 from None
    except DomainError as exc:
        messages.error(request, exc.detail)
        root = Organization.objects.alive().get(tenant_id=node.tenant_id, parent__isnull=True)
        return redirect("org-deleted", org_id=root.pk)
    messages.success(request, f"{node.name} is back, with everything that was deleted with it.")
    return redirect("org", org_id=node.pk)


# -- projects ------------------------------------------------------------------------------------------------------


@login_required
def project_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "project.manage")
    return _form_view(
        request,
        org,
        ProjectForm(request.POST or None),
        lambda data: services.create_project(actor=request.user, org=org, **data),
        title=f"New project in {org.name}",
        submit="Create project",
        success=lambda project: reverse("project", args=[org.pk, project.pk]),
        done="The project was created.",
    )


@login_required
def project_detail(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id)
    caps = policy.capabilities(request.user, project)
    return render_org_page(request, "orgs/project.html", project.org, project=project, project_caps=caps)


@login_required
def project_edit(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id, "project.manage")
    back = reverse("project", args=[org_id, project.pk])
    return _form_view(
        request,
        project.org,
        ProjectForm(request.POST or None, initial={"name": project.name, "description": project.description}),
        lambda data: services.update_project(actor=request.user, project=project, **data),
        title=f"Edit {project.name}",
        submit="Save",
        success=lambda result: back,
        done="Your changes were saved.",
        cancel=back,
    )


@login_required
def project_delete(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = fetch_project(request, org_id, project_id, "project.manage")
    if request.method == "POST":
        services.delete_project(actor=request.user, project=project)
        messages.success(request, f"Project {project.name} was deleted.")
        return redirect("org", org_id=org_id)
    return render_org_page(
        request,
        "orgs/confirm_delete.html",
        project.org,
        title=f"Delete project {project.name}?",
        what="project",
        explanation="The project and everything in it are deleted for good: this cannot be undone.",
        cancel=reverse("project", args=[org_id, project.pk]),
    )
