"""The console's organization and project pages (/o/<org-uuid>/…).

Every view fetches and authorizes through ``_org``/``_project`` (policy.get_for: 404 when not visible, 403 when
visible without the capability) and writes through orgs.services; domain errors become form errors or messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from access import policy
from access.services import remember_org
from config.errors import Conflict, DomainError, Forbidden, NotFound
from orgs import navigation, services
from orgs.models import Organization, Project


def _fetch(user: Any, capability: str, queryset: Any, **lookup: Any) -> Any:
    try:
        return policy.get_for(user, capability, queryset, **lookup)
    except NotFound:
        raise Http404 from None
    except Forbidden as exc:
        raise PermissionDenied(exc.detail) from None


def _org(request: HttpRequest, org_id: UUID, capability: str = "org.view") -> Organization:
    org = _fetch(request.user, "org.view", Organization.objects.alive().select_related("tenant"), pk=org_id)
    if capability != "org.view":
        _fetch(request.user, capability, Organization.objects.alive().select_related("tenant"), pk=org_id)
    return org


def _project(request: HttpRequest, org_id: UUID, project_id: UUID, capability: str = "project.view") -> Project:
    queryset = Project.objects.select_related("org__tenant").filter(org_id=org_id, org__deleted_at__isnull=True)
    return _fetch(request.user, capability, queryset, pk=project_id)


def _page(request: HttpRequest, template: str, org: Organization, **context: Any) -> HttpResponse:
    remember_org(user=request.user, org=org)
    return render(request, template, navigation.context_for(request, org) | context)


def _apply_errors(form: forms.Form, exc: Exception) -> None:
    """Show a service's refusal on the form: field errors where they belong, the rest on top."""
    if isinstance(exc, ValidationError):
        for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
            form.add_error(field if field in form.fields else None, errors)
    elif isinstance(exc, DomainError):
        form.add_error(None, exc.detail)


def _form_view(
    request: HttpRequest,
    org: Organization,
    form_class: type[forms.Form],
    action: Callable[[dict[str, Any]], Any],
    *,
    title: str,
    submit: str,
    initial: dict[str, Any] | None = None,
    success: Callable[[Any], str],
    form_kwargs: dict[str, Any] | None = None,
) -> HttpResponse:
    form = form_class(request.POST or None, initial=initial, **(form_kwargs or {}))
    if request.method == "POST" and form.is_valid():
        try:
            result = action(form.cleaned_data)
        except (ValidationError, DomainError) as exc:
            if isinstance(exc, NotFound):
                raise Http404 from None
            _apply_errors(form, exc)
        else:
            messages.success(request, f"{title}: done.")
            return redirect(success(result))
    status = 400 if request.method == "POST" else 200
    response = _page(request, "orgs/form.html", org, form=form, title=title, submit=submit)
    response.status_code = status
    return response


# The helpers every console page of an org uses (the access app's pages too).
fetch_org = _org
fetch_project = _project
render_org_page = _page
apply_errors = _apply_errors


# -- forms ---------------------------------------------------------------------------------------------------------


class OrgForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class OrgEditForm(OrgForm):
    access_inheritance = forms.ChoiceField(
        choices=Organization.AccessInheritance.choices,
        help_text="Which grants from parent organizations apply here. Tenant administrators always keep access.",
    )
    invite_domains = forms.CharField(
        required=False,
        label="Invitation e-mail domains",
        help_text="Comma-separated, e.g. acme.com, acme.de. Empty: invitations to any address "
        "(unless a parent organization restricts them).",
    )


class MoveForm(forms.Form):
    parent = forms.ModelChoiceField(queryset=Organization.objects.none(), label="New parent")

    def __init__(self, *args: Any, org: Organization, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Every live org of the tenant outside the moved subtree; the service checks again under the tree lock.
        self.fields["parent"].queryset = (
            Organization.objects.alive()
            .filter(tenant_id=org.tenant_id)
            .exclude(org.descendants_q())
            .order_by("tree_id", "lft")
        )
        self.fields["parent"].label_from_instance = lambda o: f"{'— ' * o.level}{o.name}"


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


# -- pages ---------------------------------------------------------------------------------------------------------


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The landing page: the org used last if still visible, else the first the user may open."""
    visible = policy.visible(request.user, "org.view", Organization.objects.alive())
    org = None
    if request.user.last_org_id:
        org = visible.filter(pk=request.user.last_org_id).first()
    if org is None:
        org = visible.order_by("tree_id", "lft").first()
    if org is not None:
        return redirect("org", org_id=org.pk)
    projects = policy.visible(request.user, "project.view", Project.objects.filter(org__deleted_at__isnull=True))
    return render(request, "orgs/no_org.html", {"projects": projects.select_related("org")[:50]})


@login_required
def org_overview(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = _org(request, org_id)
    children = list(org.children.alive().order_by("name"))
    projects = policy.visible(request.user, "project.view", org.projects.all()).order_by("name")
    return _page(request, "orgs/overview.html", org, children=children, projects=projects)


@login_required
def switch(request: HttpRequest) -> HttpResponse:
    """The switcher as a page: search by name without JavaScript."""
    result = navigation.switcher(request.user, request.GET.get("q", ""))
    return render(request, "orgs/switch.html", {"result": result, "switcher": result})


@login_required
def org_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    parent = _org(request, org_id, "org.create_child")
    if not parent.tenant.allows_child_orgs:
        messages.error(request, services.UPGRADE_HINT)
        return redirect("org", org_id=parent.pk)
    return _form_view(
        request,
        parent,
        OrgForm,
        lambda data: services.create_org(actor=request.user, parent=parent, **data),
        title=f"New organization in {parent.name}",
        submit="Create organization",
        success=lambda org: reverse("org", args=[org.pk]),
    )


@login_required
def org_edit(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = _org(request, org_id, "org.manage")
    return _form_view(
        request,
        org,
        OrgEditForm,
        lambda data: services.update_org(actor=request.user, org=org, **data),
        title=f"Edit {org.name}",
        submit="Save",
        initial={
            "name": org.name,
            "description": org.description,
            "access_inheritance": org.access_inheritance,
            "invite_domains": ", ".join(org.invite_domains),
        },
        success=lambda result: reverse("org", args=[org.pk]),
    )


@login_required
def org_move(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = _org(request, org_id, policy.TENANT_ADMIN)
    return _form_view(
        request,
        org,
        MoveForm,
        lambda data: services.move_org(actor=request.user, org=org, parent=data["parent"]),
        title=f"Move {org.name}",
        submit="Move",
        initial={"parent": org.parent_id},
        form_kwargs={"org": org},
        success=lambda result: reverse("org", args=[org.pk]),
    )


@login_required
def org_delete(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = _org(request, org_id, policy.TENANT_ADMIN)
    if request.method == "POST":
        try:
            services.delete_org(actor=request.user, org=org)
        except Conflict as exc:
            messages.error(request, exc.detail)
            return redirect("org", org_id=org.pk)
        messages.success(request, f"{org.name} and its sub-organizations were deleted. You can restore them.")
        return redirect("org", org_id=org.parent_id)
    size = Organization.objects.alive().filter(org.descendants_q()).count()
    return _page(request, "orgs/confirm_delete.html", org, size=size)


@login_required
def org_deleted(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The tenant's deleted subtrees, restorable within the window (tenant administrators)."""
    org = _org(request, org_id, policy.TENANT_ADMIN)
    from django.db.models import F

    deleted = (
        Organization.objects.filter(tenant_id=org.tenant_id, deleted_with_id=F("pk"))
        .select_related("parent")
        .order_by("-deleted_at")
    )
    return _page(request, "orgs/deleted.html", org, deleted=deleted)


@require_POST
@login_required
def org_restore(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = Organization.objects.deleted().filter(pk=org_id).first()
    if org is None or not policy.is_tenant_admin(request.user, org.tenant_id):
        raise Http404
    try:
        services.restore_org(actor=request.user, org=org)
    except Conflict as exc:
        messages.error(request, exc.detail)
        root = Organization.objects.get(tenant_id=org.tenant_id, parent__isnull=True)
        return redirect("org-deleted", org_id=root.pk)
    messages.success(request, f"{org.name} is back.")
    return redirect("org", org_id=org.pk)


@login_required
def project_create(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = _org(request, org_id, "project.manage")
    return _form_view(
        request,
        org,
        ProjectForm,
        lambda data: services.create_project(actor=request.user, org=org, **data),
        title=f"New project in {org.name}",
        submit="Create project",
        success=lambda project: reverse("project", args=[org.pk, project.pk]),
    )


@login_required
def project_detail(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = _project(request, org_id, project_id)
    caps = policy.capabilities(request.user, project)
    return _page(request, "orgs/project.html", project.org, project=project, project_caps=caps)


@login_required
def project_edit(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = _project(request, org_id, project_id, "project.manage")
    return _form_view(
        request,
        project.org,
        ProjectForm,
        lambda data: services.update_project(actor=request.user, project=project, **data),
        title=f"Edit {project.name}",
        submit="Save",
        initial={"name": project.name, "description": project.description},
        success=lambda result: reverse("project", args=[org_id, project.pk]),
    )


@require_POST
@login_required
def project_delete(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    project = _project(request, org_id, project_id, "project.manage")
    services.delete_project(actor=request.user, project=project)
    messages.success(request, f"Project {project.name} was deleted.")
    return redirect("org", org_id=org_id)
