"""Console pages of the access core under /o/<org-uuid>/: members, teams, roles, invitations, explain, audit log.

Like every console view: fetch and authorize with orgs.views.fetch_org (404 when not visible, 403 without the
capability), write through access.services, show their refusals on the page."""

from __future__ import annotations

import csv
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from access import policy, selectors
from access.roles import CAPABILITIES
from access.services.custom_roles import create_role, delete_role
from access.services.grants import (
    change_grant,
    grant_role,
    remove_tenant_member,
    revoke_grant,
    roles_available,
    set_tenant_admin,
)
from access.services.invitations import accept_url, invite, revoke_invitation
from access.services.teams import add_team_member, create_team, delete_team, remove_team_member
from config.errors import DomainError, NotFound
from orgs.models import Organization
from orgs.views import apply_errors, fetch_org, render_org_page


def _role_choices(org: Organization) -> list[tuple[str, str]]:
    return [(role.key, role.name) for role in roles_available(org)]


def _tenant_users(org: Organization) -> Any:
    return get_user_model().objects.filter(tenant_memberships__tenant_id=org.tenant_id).order_by("username")


def _refusal(request: HttpRequest, exc: Exception) -> None:
    if isinstance(exc, NotFound):
        raise Http404 from None
    text = exc.detail if isinstance(exc, DomainError) else "; ".join(getattr(exc, "messages", [str(exc)]))
    messages.error(request, text)


# -- members -------------------------------------------------------------------------------------------------------


class MemberForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False, label="Person")
    team = forms.ModelChoiceField(queryset=selectors.Team.objects.none(), required=False)
    role = forms.ChoiceField()
    expires_at = forms.DateTimeField(required=False, label="Expires (optional)", help_text="YYYY-MM-DD HH:MM, UTC")

    def __init__(self, *args: Any, org: Organization, viewer: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = _tenant_users(org)
        self.fields["team"].queryset = selectors.teams_in(org, viewer=viewer)
        self.fields["role"].choices = _role_choices(org)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("user")) == bool(data.get("team")):
            raise ValidationError("Choose a person or a team.")
        return data


@login_required
def members(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    can_manage = policy.can(request.user, "member.manage", org)
    form = MemberForm(request.POST or None, org=org, viewer=request.user) if can_manage else None
    if request.method == "POST":
        if not can_manage:
            fetch_org(request, org_id, "member.manage")  # answers 403
        if form is not None and form.is_valid():
            try:
                grant_role(
                    actor=request.user,
                    target=org,
                    role=form.cleaned_data["role"],
                    user=form.cleaned_data["user"],
                    team=form.cleaned_data["team"],
                    expires_at=form.cleaned_data["expires_at"],
                )
            except (ValidationError, DomainError) as exc:
                if isinstance(exc, NotFound):
                    raise Http404 from None
                apply_errors(form, exc)
            else:
                messages.success(request, "Member added.")
                return redirect("org-members", org_id=org.pk)
    rows = selectors.org_members(org)
    if request.GET.get("format") == "csv":
        return _members_csv(org, rows)
    response = render_org_page(
        request, "access/members.html", org, members=rows, form=form, can_manage=can_manage,
        role_choices=_role_choices(org) if can_manage else [], tab="members",
    )  # fmt: skip
    if form is not None and form.errors:
        response.status_code = 400
    return response


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _members_csv(org: Organization, rows: list[selectors.Member]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="members-{org.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(["username", "email", "team", "role", "granted_at", "inherited", "expires_at"])
    for m in rows:
        writer.writerow([_cell(v) for v in (
            m.user.username if m.user else "", m.user.email if m.user else "", m.team.name if m.team else "",
            m.role.key, m.org.name, "yes" if m.inherited else "no", m.expires_at.isoformat() if m.expires_at else "",
        )])  # fmt: skip
    return response


def _grant_on(request: HttpRequest, org: Organization, grant_id: UUID) -> Any:
    grant = selectors.grant_by_id(grant_id)
    target = getattr(grant, "content_object", None)
    if grant is None or not isinstance(target, Organization) or target.tree_id != org.tree_id:
        raise Http404
    return grant


@require_POST
@login_required
def member_change(request: HttpRequest, org_id: UUID, grant_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    grant = _grant_on(request, org, grant_id)
    try:
        change_grant(actor=request.user, grant=grant, role=request.POST.get("role", ""))
        messages.success(request, "Role changed.")
    except (ValidationError, DomainError) as exc:
        _refusal(request, exc)
    return redirect("org-members", org_id=org.pk)


@require_POST
@login_required
def member_remove(request: HttpRequest, org_id: UUID, grant_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    grant = _grant_on(request, org, grant_id)
    try:
        revoke_grant(actor=request.user, grant=grant)
        messages.success(request, "Member removed.")
    except (ValidationError, DomainError) as exc:
        _refusal(request, exc)
    return redirect("org-members", org_id=org.pk)


# -- teams ---------------------------------------------------------------------------------------------------------


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000)


@login_required
def teams(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    can_manage = policy.can(request.user, "member.manage", org)
    form = TeamForm(request.POST or None)
    if request.method == "POST":
        fetch_org(request, org_id, "member.manage")
        if form.is_valid():
            try:
                create_team(actor=request.user, org=org, **form.cleaned_data)
            except (ValidationError, DomainError) as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, "Team created.")
                return redirect("org-teams", org_id=org.pk)
    listed = selectors.teams_in(org, viewer=request.user).prefetch_related("group__user_set")
    response = render_org_page(
        request, "access/teams.html", org, teams=listed, form=form, can_manage=can_manage,
        users=_tenant_users(org) if can_manage else [], tab="teams",
    )  # fmt: skip
    if form.errors:
        response.status_code = 400
    return response


@require_POST
@login_required
def team_action(request: HttpRequest, org_id: UUID, team_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    team = selectors.teams_in(org, viewer=request.user).filter(pk=team_id).first()
    if team is None:
        raise Http404
    action = request.POST.get("action")
    try:
        if action == "delete":
            delete_team(actor=request.user, team=team)
        else:
            user = _tenant_users(org).filter(pk=request.POST.get("user") or None).first()
            if user is None:
                raise ValidationError("Choose a person of this tenant.")
            if action == "add":
                add_team_member(actor=request.user, team=team, user=user)
            else:
                remove_team_member(actor=request.user, team=team, user=user)
        messages.success(request, "Team updated.")
    except (ValidationError, DomainError) as exc:
        _refusal(request, exc)
    return redirect("org-teams", org_id=org.pk)


# -- roles ---------------------------------------------------------------------------------------------------------


class RoleForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000)
    capabilities = forms.MultipleChoiceField(choices=[(c, c) for c in CAPABILITIES],
                                             widget=forms.CheckboxSelectMultiple)  # fmt: skip


@login_required
def roles(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    can_manage = policy.can(request.user, "member.manage", org)
    form = RoleForm(request.POST or None)
    if request.method == "POST":
        fetch_org(request, org_id, "member.manage")
        if request.POST.get("delete"):
            role = selectors.custom_roles_in(org).filter(pk=request.POST["delete"]).first()
            if role is None:
                raise Http404
            try:
                delete_role(actor=request.user, role=role)
                messages.success(request, f"Role {role.name} deleted.")
            except DomainError as exc:
                _refusal(request, exc)
            return redirect("org-roles", org_id=org.pk)
        if form.is_valid():
            try:
                create_role(actor=request.user, org=org, **form.cleaned_data)
            except (ValidationError, DomainError) as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, "Role created.")
                return redirect("org-roles", org_id=org.pk)
    response = render_org_page(
        request, "access/roles.html", org, roles=roles_available(org), form=form, can_manage=can_manage, tab="roles"
    )
    if form.errors:
        response.status_code = 400
    return response


# -- invitations ---------------------------------------------------------------------------------------------------


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField()
    days = forms.IntegerField(min_value=1, max_value=30, initial=7, label="Valid for (days)")

    def __init__(self, *args: Any, org: Organization, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(org)


@login_required
def invitations(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.manage")
    form = InviteForm(request.POST or None, org=org)
    link = None
    if request.method == "POST":
        if request.POST.get("revoke"):
            invitation = selectors.invitations_of(org).filter(pk=request.POST["revoke"]).first()
            if invitation is None:
                raise Http404
            try:
                revoke_invitation(actor=request.user, invitation=invitation)
                messages.success(request, f"The invitation to {invitation.email} was revoked.")
            except DomainError as exc:
                _refusal(request, exc)
            return redirect("org-invitations", org_id=org.pk)
        if form.is_valid():
            try:
                invitation, raw = invite(
                    actor=request.user,
                    org=org,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    lifetime_days=form.cleaned_data["days"],
                )
            except (ValidationError, DomainError) as exc:
                apply_errors(form, exc)
            else:
                link = accept_url(raw)
                messages.success(request, f"Invitation e-mailed to {invitation.email}.")
                form = InviteForm(org=org)
    response = render_org_page(
        request, "access/invitations.html", org, form=form, link=link,
        invitations=selectors.invitations_of(org)[:200], tab="invitations",
    )  # fmt: skip
    if form.errors:
        response.status_code = 400
    return response


# -- explain and audit ---------------------------------------------------------------------------------------------


@login_required
def explain(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    users = _tenant_users(org)
    result = None
    subject = users.filter(username=request.GET.get("user", "")).first()
    capability = request.GET.get("capability", "")
    error = None
    if request.GET.get("user") or capability:
        if subject is None:
            error = "Choose a person of this tenant."
        elif capability not in CAPABILITIES:
            error = "Choose a capability."
        else:
            result = policy.explain(get_user_model().objects.get(pk=subject.pk), capability, org)
    response = render_org_page(
        request, "access/explain.html", org, users=users, capabilities=CAPABILITIES, result=result,
        subject=subject, capability=capability, error=error, tab="explain",
    )  # fmt: skip
    if error:
        response.status_code = 400
    return response


@login_required
def audit(request: HttpRequest, org_id: UUID) -> HttpResponse:
    from rest_framework.exceptions import ValidationError as FilterError

    from access.api_members import filtered_audit_events

    org = fetch_org(request, org_id, "audit.view")
    try:
        events = filtered_audit_events(org, request.GET)
        error = None
    except FilterError:
        events, error = selectors.audit_events(org), "Use an ISO 8601 date for “since”, e.g. 2026-11-01."
    if request.GET.get("format") == "csv" and error is None:
        return _audit_csv(org, events)
    page = Paginator(events.select_related("org"), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render_org_page(request, "access/audit.html", org, page=page, error=error, query=query.urlencode(),
                           filters=request.GET, tab="audit")  # fmt: skip


def _audit_csv(org: Organization, events: Any) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{org.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(["time", "actor", "action", "org", "target_type", "target", "changes", "ip"])
    for e in events.iterator(chunk_size=500):
        writer.writerow([_cell(v) for v in (e.created_at.isoformat(), e.actor_name, e.action,
                         e.org.name if e.org else "", e.target_type, e.target_name, e.changes, e.ip)])  # fmt: skip
    return response


# -- the tenant's people (tenant administrators) ---------------------------------------------------------------------


@login_required
def people(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The tenant's members, for its administrators: make or unmake a tenant administrator, remove someone from the
    tenant (with everything that gives them access in it). Accounts are their owners': nothing here edits one."""
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
    tenant = org.tenant
    if request.method == "POST":
        member = selectors.tenant_memberships(tenant).filter(user_id=request.POST.get("user") or None).first()
        if member is None:
            raise Http404
        action = request.POST.get("action")
        try:
            if action == "remove":
                if request.POST.get("confirm") != "yes":
                    raise ValidationError(
                        f"Tick the box to confirm removing {member.user.username} from {tenant.name}."
                    )
                remove_tenant_member(actor=request.user, tenant=tenant, user=member.user)
                messages.success(request, f"{member.user.username} was removed from {tenant.name}.")
            elif action in ("make-admin", "unmake-admin"):
                set_tenant_admin(actor=request.user, tenant=tenant, user=member.user, is_admin=action == "make-admin")
                messages.success(request, f"{member.user.username}'s membership was changed.")
            else:
                raise ValidationError("Choose an action.")
        except (ValidationError, DomainError) as exc:
            _refusal(request, exc)
        return redirect("org-people", org_id=org.pk)
    search = request.GET.get("q", "").strip()
    page = Paginator(selectors.tenant_memberships(tenant, search), 100).get_page(request.GET.get("page"))
    return render_org_page(request, "access/people.html", org, page=page, search=search, tab="people")


# -- project members -----------------------------------------------------------------------------------------------


@login_required
def project_members(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    """A project's own grants (a role on this project only): listed with member.view, changed with member.manage."""
    from orgs.views import fetch_project

    project = fetch_project(request, org_id, project_id, "member.view")
    can_manage = policy.can(request.user, "member.manage", project)
    form = MemberForm(request.POST or None, org=project.org, viewer=request.user) if can_manage else None
    if request.method == "POST":
        if request.POST.get("remove"):
            grant = selectors.grant_by_id(request.POST["remove"])
            if grant is None or getattr(grant, "content_object_id", None) != project.pk:
                raise Http404
            try:
                revoke_grant(actor=request.user, grant=grant)
                messages.success(request, "Member removed from the project.")
            except (ValidationError, DomainError) as exc:
                _refusal(request, exc)
            return redirect("project-members", org_id=org_id, project_id=project.pk)
        fetch_project(request, org_id, project_id, "member.manage")
        if form is not None and form.is_valid():
            try:
                grant_role(actor=request.user, target=project, role=form.cleaned_data["role"],
                           user=form.cleaned_data["user"], team=form.cleaned_data["team"],
                           expires_at=form.cleaned_data["expires_at"])  # fmt: skip
            except (ValidationError, DomainError) as exc:
                if isinstance(exc, NotFound):
                    raise Http404 from None
                apply_errors(form, exc)
            else:
                messages.success(request, "Member added to the project.")
                return redirect("project-members", org_id=org_id, project_id=project.pk)
    response = render_org_page(
        request, "access/project_members.html", project.org, project=project,
        members=selectors.project_members(project), form=form, can_manage=can_manage,
    )  # fmt: skip
    if form is not None and form.errors:
        response.status_code = 400
    return response
