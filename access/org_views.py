"""Console pages of the access core under /o/<org-uuid>/: members, teams, roles, invitations, explain, audit log,
the tenant's people and a project's members.

Like every console view: fetch and authorize through config.console (404 when not visible, 403 without the
capability), write through access.services with config.console.dispatch (one answer per refusal), and the forms that
change a row (a role, a team, a grant, a membership) carry the version it had when the page was opened."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from typing import Any
from uuid import UUID

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from access import audit_log, policy, selectors, vocabulary
from access.models import AuditEvent, OrgTeamGrant, ProjectTeamGrant, Team
from access.roles import CAPABILITIES
from access.services.custom_roles import create_role, delete_role, update_role
from access.services.grants import grant_role, remove_tenant_member, roles_available, set_tenant_admin
from access.services.invitations import accept_url, invite, revoke_invitation
from access.services.teams import add_team_member, create_team, delete_team, remove_team_member, rename_team
from config.console import (
    Confirm,
    EditForm,
    Undo,
    Write,
    console_view,
    dispatch,
    fetch_org,
    fetch_project,
    form_page,
    goes_with,
    opened,
    parse_uuid,
    render_org_page,
    require,
)
from config.errors import NotFound
from config.listing import paginate, search_rows, search_term
from config.spreadsheet import cell as csv_cell
from governance.impact.access_changes import apply_change, apply_removal, preview_change, preview_removal
from orgs.models import Organization


def _role_choices(org: Organization) -> list[tuple[str, str]]:
    return [(role.key, role.name) for role in roles_available(org)]


def _tenant_users(org: Organization) -> Any:
    return get_user_model().objects.filter(tenant_memberships__tenant_id=org.tenant_id).order_by("username")


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


class RoleChangeForm(EditForm):
    """A grant's new role, with the version the grant had when the members page was opened."""

    role = forms.CharField(max_length=100)


def _add_member(request: HttpRequest, target: Any, org: Organization, done: str, then: str) -> Write:
    """The write that grants a role on ``target`` (an org or a project of ``org``)."""
    return Write(
        capability="member.manage", on=target,
        run=lambda d: grant_role(actor=request.user, target=target, role=d["role"], user=d["user"], team=d["team"],
                                 expires_at=d["expires_at"]),
        done=done, then=lambda grant: then, form=lambda *a: MemberForm(*a, org=org, viewer=request.user),
        form_key="form",
    )  # fmt: skip


def _members_page(request: HttpRequest, org: Organization, context: dict[str, Any]) -> HttpResponse:
    can_manage = policy.can(request.user, "member.manage", org)
    form = context.get("form", MemberForm(org=org, viewer=request.user) if can_manage else None)
    listing = paginate(request, _searched_members(request, selectors.org_members(org)))
    return render_org_page(
        request, "access/members.html", org, members=listing.page, listing=listing, form=form,
        can_manage=can_manage, role_choices=_role_choices(org) if can_manage else [], tab="members",
        error=context.get("error"),
    )  # fmt: skip


def _searched_members(request: HttpRequest, members: list[selectors.Member]) -> list[selectors.Member]:
    """The members whose username, e-mail, team or role matches ``?q=`` (all of them without one)."""
    return search_rows(
        members, search_term(request),
        lambda m: (m.user.username if m.user else "", m.user.email if m.user else "", m.team.name if m.team else "",
                   m.role.name),
    )  # fmt: skip


@console_view
def members(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    if request.method != "POST" and request.GET.get("format") == "csv":
        return _members_csv(org, _searched_members(request, selectors.org_members(org)))
    here = reverse("org-members", args=[org.pk])
    writes = {
        "": _add_member(request, org, org, "Member added.", here),
        # The undo of a removal (member_remove offers it): the same holder, role and expiry granted again. Refused
        # when things moved on meanwhile: the holder has a role here again, the role is gone, the expiry passed.
        "restore": _add_member(request, org, org, "The member is back, with the same role.", here),
    }
    return dispatch(request, writes, lambda context: _members_page(request, org, context))


def _members_csv(org: Organization, rows: list[selectors.Member]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="members-{org.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(["username", "email", "team", "role", "granted_at", "inherited", "expires_at"])
    for m in rows:
        writer.writerow([csv_cell(v) for v in (
            m.user.username if m.user else "", m.user.email if m.user else "", m.team.name if m.team else "",
            m.role.key, m.org.name, "yes" if m.inherited else "no", m.expires_at.isoformat() if m.expires_at else "",
        )])  # fmt: skip
    return response


def _grant_on(org: Organization, grant_id: UUID) -> Any:
    """A grant made on ``org``'s tree, by its id (else NotFound)."""
    grant = selectors.grant_by_id(grant_id)
    target = getattr(grant, "content_object", None)
    if grant is None or not isinstance(target, Organization) or target.tree_id != org.tree_id:
        raise NotFound()
    return grant


def _takes_away(impact: Any) -> bool:
    """Whether a previewed change costs anyone anything (a role change that only adds is made without asking)."""
    return any(entry.kind != "gains" for section in impact.sections for entry in section.entries)


@require_POST
@console_view
def member_change(request: HttpRequest, org_id: UUID, grant_id: UUID) -> HttpResponse:
    """Change a grant's role. A change that takes something away from anyone asks first, with its preview (who
    loses what, where); the confirmed change keeps the preview's summary in its audit event."""
    org = fetch_org(request, org_id, "member.view")
    grant = _grant_on(org, grant_id)
    here = reverse("org-members", args=[org.pk])

    def asking(d: dict[str, Any]) -> Confirm | None:
        impact = preview_change(actor=request.user, grant=grant, role=d["role"], version=d["version"])
        if not _takes_away(impact):
            return None
        return Confirm(
            title=f"{impact.change}?", button="Change role", cancel=here, impact=impact,
            note="You can change the role back right after.",
        )  # fmt: skip

    write = Write(
        run=lambda d: apply_change(actor=request.user, grant=grant, role=d["role"], version=d["version"])[0],
        done="Role changed.",
        then=lambda result: here,
        form=RoleChangeForm,
        confirm=asking,
    )
    return dispatch(request, {"": write}, lambda context: _members_page(request, org, context))


class ExpiryForm(EditForm):
    """A grant's end (empty: none), with the version the grant had when the form was opened."""

    expires_at = forms.DateTimeField(
        required=False, label="Ends (UTC)", help_text="YYYY-MM-DD HH:MM, UTC; empty: the role does not expire."
    )


@console_view
def member_expiry(request: HttpRequest, org_id: UUID, grant_id: UUID) -> HttpResponse:
    """Set or clear when a grant ends. Setting an end asks first, with the preview of the grant as if it had ended
    (who loses what, where, on that date); a past date is refused as the service refuses it."""
    org = fetch_org(request, org_id, "member.view")
    grant = _grant_on(org, grant_id)
    target = grant.content_object
    require(request, "member.manage", target)
    back = reverse("org-members", args=[target.pk])

    def asking(d: dict[str, Any]) -> Confirm | None:
        if d["expires_at"] is None:
            return None  # nothing ends: nothing to ask
        impact = preview_change(actor=request.user, grant=grant, expires_at=d["expires_at"], version=d["version"])
        return Confirm(
            title=f"{impact.change}?", button="Set the end", cancel=back, impact=impact,
            note="Until then nothing changes; the end can be moved or cleared any time before.",
        )  # fmt: skip

    write = Write(
        run=lambda d: apply_change(actor=request.user, grant=grant, expires_at=d["expires_at"],
                                   version=d["version"])[0],
        done=lambda g: "The role no longer expires." if g.expires_at is None else "The role's end is set.",
        then=lambda result: back, form=ExpiryForm, form_key="form", confirm=asking,
    )  # fmt: skip
    name = _holder(grant)[1]
    initial = ExpiryForm(initial=opened(grant, expires_at=grant.expires_at))
    return form_page(
        request, org, write, initial, title=f"When {name}'s role {grant.role.name} on {target.name} ends",
        submit="Preview", cancel=back,
    )  # fmt: skip


# What a deleted team's grants are, in words (their models' verbose names are the tables' names).
TEAM_HOLDINGS = {
    OrgTeamGrant: ("role on an organization", "roles on organizations"),
    ProjectTeamGrant: ("role on a project", "roles on projects"),
}


def _holder(grant: Any) -> tuple[str, str, Any]:
    """Who holds ``grant``: its form field ("user" or "team"), the name the page shows, and the id the form takes."""
    user = getattr(grant, "user", None)
    if user is not None:
        return "user", user.get_username(), user.pk
    team = Team.objects.filter(group_id=grant.group_id).first()
    return "team", f"team {team.name}" if team else "a deleted team", team.pk if team else ""


def _removal(grant: Any, where: str, back: str, *, below: bool = True) -> tuple[Confirm, Undo]:
    """What removing ``grant`` asks first, and the undo that grants the same role (and expiry) again at ``back``."""
    field, name, holder = _holder(grant)
    confirm = Confirm(
        title=f"Remove {name} from {where}?", button="Remove", cancel=back, note="You can undo this right after.",
        goes_with=[f"the role {grant.role.name} on {where}" + (" and everything below it" if below else ""),
                   *([f"its expiry on {grant.expires_at:%Y-%m-%d %H:%M} UTC"] if grant.expires_at else [])],
    )  # fmt: skip
    expires = grant.expires_at.isoformat() if grant.expires_at else ""
    return confirm, Undo(back, {"action": "restore", field: holder, "role": grant.role.key, "expires_at": expires})


@require_POST
@console_view
def member_remove(request: HttpRequest, org_id: UUID, grant_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    grant = _grant_on(org, grant_id)
    target = grant.content_object
    confirm, undo = _removal(grant, target.name, reverse("org-members", args=[target.pk]))
    write = Write(
        capability="member.manage",  # checked before asking: someone who may only look is refused, not asked
        on=target,
        run=lambda d: apply_removal(actor=request.user, grant=grant, version=d["version"]),
        done="Member removed.",
        then=lambda result: reverse("org-members", args=[org.pk]),
        confirm=lambda d: replace(
            confirm, impact=preview_removal(actor=request.user, grant=grant, version=d["version"])
        ),
        undo=lambda result: undo,
    )
    return dispatch(request, {"": write}, lambda context: _members_page(request, org, context))


# -- teams ---------------------------------------------------------------------------------------------------------


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000)


class TeamEditForm(TeamForm, EditForm):
    """A team's name and description, with the version the team had when the form was opened."""


def _teams_page(request: HttpRequest, org: Organization, context: dict[str, Any]) -> HttpResponse:
    can_manage = policy.can(request.user, "member.manage", org)
    listed = selectors.teams_in(org, viewer=request.user).prefetch_related("group__user_set")
    return render_org_page(
        request, "access/teams.html", org, teams=listed, form=context.get("form", TeamForm()), can_manage=can_manage,
        users=_tenant_users(org) if can_manage else [], tab="teams", error=context.get("error"),
    )  # fmt: skip


@console_view
def teams(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    write = Write(
        capability="member.manage", on=org,
        run=lambda d: create_team(actor=request.user, org=org, name=d["name"], description=d["description"]),
        done="Team created.", then=lambda team: reverse("org-teams", args=[org.pk]), form=TeamForm, form_key="form",
    )  # fmt: skip
    return dispatch(request, {"": write}, lambda context: _teams_page(request, org, context))


def _team_in(request: HttpRequest, org: Organization, team_id: UUID) -> Any:
    """A team usable at ``org`` that the user may open (else NotFound: its name is not echoed)."""
    team = selectors.teams_in(org, viewer=request.user).filter(pk=team_id).first()
    if team is None:
        raise NotFound()
    return team


@require_POST
@console_view
def team_action(request: HttpRequest, org_id: UUID, team_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    team = _team_in(request, org, team_id)
    here = reverse("org-teams", args=[org.pk])

    def person(d: dict[str, Any]) -> Any:
        user = _tenant_users(org).filter(pk=request.POST.get("user") or None).first()
        if user is None:
            raise ValidationError("Choose a person of this tenant.")
        return user

    def deleting(d: dict[str, Any]) -> Confirm:
        members = team.group.user_set.count()
        return Confirm(
            title=f"Delete the team {team.name}?", button="Delete team", cancel=here,
            goes_with=[f"{members} member{' loses' if members == 1 else 's lose'} the roles the team holds",
                       *goes_with(team.group, skip=[Team], names=TEAM_HOLDINGS)],
        )  # fmt: skip

    def removing(d: dict[str, Any]) -> Confirm:
        return Confirm(
            title=f"Remove {person(d).get_username()} from the team {team.name}?", button="Remove", cancel=here,
            goes_with=["the roles they hold through the team"], note="You can undo this right after.",
        )  # fmt: skip

    writes = {
        "delete": Write(
            capability="member.manage", on=team.org,
            run=lambda d: delete_team(actor=request.user, team=team, version=d["version"]),
            done=f"Team {team.name} deleted.", then=lambda r: here, confirm=deleting,
        ),
        "add": Write(
            run=lambda d: add_team_member(actor=request.user, team=team, user=person(d)),
            done="Team updated.", then=lambda r: here,
        ),
        "remove": Write(
            capability="member.manage", on=team.org,
            run=lambda d: remove_team_member(actor=request.user, team=team, user=person(d)),
            done="Team updated.", then=lambda r: here, confirm=removing,
            undo=lambda r: Undo(request.path, {"action": "add", "user": request.POST.get("user", "")}),
        ),
    }  # fmt: skip
    return dispatch(request, writes, lambda context: _teams_page(request, org, context))


@console_view
def team_edit(request: HttpRequest, org_id: UUID, team_id: UUID) -> HttpResponse:
    """Rename a team (or change its description) where it is defined."""
    org = fetch_org(request, org_id, "member.view")
    team = _team_in(request, org, team_id)
    if team.org_id != org.pk:
        raise NotFound()  # edited at the org that defines it
    require(request, "member.manage", org)
    write = Write(
        run=lambda d: rename_team(actor=request.user, team=team, name=d["name"], description=d["description"],
                                  version=d["version"]),
        done="Team saved.", then=lambda result: reverse("org-teams", args=[org.pk]), form=TeamEditForm,
        form_key="form",
    )  # fmt: skip
    initial = TeamEditForm(initial=opened(team, name=team.name, description=team.description))
    return form_page(
        request, org, write, initial, title=f"Edit team {team.name}", submit="Save",
        cancel=reverse("org-teams", args=[org.pk]),
    )  # fmt: skip


# -- roles ---------------------------------------------------------------------------------------------------------


class RoleForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000)
    capabilities = forms.MultipleChoiceField(choices=vocabulary.choices(CAPABILITIES),
                                             widget=forms.CheckboxSelectMultiple)  # fmt: skip


class RoleEditForm(RoleForm, EditForm):
    """A custom role's name, description and capabilities, with the version it had when the form was opened."""


def _custom_role(org: Organization, role_id: Any) -> Any:
    """A custom role defined at ``org`` (else NotFound): roles are edited and deleted where they are defined."""
    role = selectors.custom_roles_in(org).filter(org=org, pk=parse_uuid(role_id)).first()
    if role is None:
        raise NotFound()
    return role


@console_view
def roles(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    here = reverse("org-roles", args=[org.pk])

    def delete(d: dict[str, Any]) -> Any:
        role = _custom_role(org, request.POST.get("role"))
        delete_role(actor=request.user, role=role, version=d["version"])
        return role

    writes = {
        "": Write(
            capability="member.manage", on=org,
            run=lambda d: create_role(actor=request.user, org=org, name=d["name"], description=d["description"],
                                      capabilities=d["capabilities"]),
            done="Role created.", then=lambda role: here, form=RoleForm, form_key="form",
        ),
        "delete": Write(
            capability="member.manage", on=org, run=delete, done=lambda role: f"Role {role.name} deleted.",
            then=lambda role: here,
            confirm=lambda d: Confirm(
                title=f"Delete the role {_custom_role(org, request.POST.get('role')).name}?", button="Delete role",
                cancel=here, note="This cannot be undone. A role still granted, or sent in an invitation, is kept.",
            ),
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        return render_org_page(
            request, "access/roles.html", org, roles=roles_available(org), form=context.get("form", RoleForm()),
            can_manage=policy.can(request.user, "member.manage", org), tab="roles", error=context.get("error"),
        )  # fmt: skip

    return dispatch(request, writes, show)


@console_view
def role_edit(request: HttpRequest, org_id: UUID, role_id: UUID) -> HttpResponse:
    """Change a custom role where it is defined: every holder's capabilities change at once."""
    org = fetch_org(request, org_id, "member.view")
    role = _custom_role(org, role_id)
    require(request, "member.manage", org)
    write = Write(
        run=lambda d: update_role(actor=request.user, role=role, name=d["name"], description=d["description"],
                                  capabilities=d["capabilities"], version=d["version"]),
        done="Role saved.", then=lambda result: reverse("org-roles", args=[org.pk]), form=RoleEditForm,
        form_key="form",
    )  # fmt: skip
    initial = RoleEditForm(initial=opened(role, name=role.name, description=role.description,
                                          capabilities=list(role.custom_capabilities)))  # fmt: skip
    return form_page(
        request, org, write, initial, title=f"Edit role {role.name}", submit="Save",
        cancel=reverse("org-roles", args=[org.pk]),
    )  # fmt: skip


# -- invitations ---------------------------------------------------------------------------------------------------


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField()
    days = forms.IntegerField(min_value=1, max_value=30, initial=7, label="Valid for (days)")

    def __init__(self, *args: Any, org: Organization, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(org)


@console_view
def invitations(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.manage")
    here = reverse("org-invitations", args=[org.pk])

    def show(context: dict[str, Any]) -> HttpResponse:
        return render_org_page(
            request, "access/invitations.html", org, form=context.get("form", InviteForm(org=org)),
            link=context.get("link"), invitations=selectors.invitations_of(org)[:200], tab="invitations",
            error=context.get("error"),
        )  # fmt: skip

    def invited() -> Any:
        invitation = selectors.invitations_of(org).filter(pk=parse_uuid(request.POST.get("invitation"))).first()
        if invitation is None:
            raise NotFound()
        return invitation

    def revoke(d: dict[str, Any]) -> Any:
        return revoke_invitation(actor=request.user, invitation=invited())

    def sent(result: Any) -> HttpResponse:
        # The raw link is in this one response only (Canopy keeps its hash): shown here, not after a redirect.
        return show({"link": accept_url(result[1])})

    writes = {
        "": Write(
            capability="member.manage", on=org,
            run=lambda d: invite(actor=request.user, org=org, email=d["email"], role=d["role"],
                                 lifetime_days=d["days"]),
            done=lambda result: f"Invitation e-mailed to {result[0].email}.", then=sent,
            form=lambda *a: InviteForm(*a, org=org), form_key="form",
        ),
        "revoke": Write(
            capability="member.manage", on=org, run=revoke,
            done=lambda invitation: f"The invitation to {invitation.email} was revoked.", then=lambda r: here,
            confirm=lambda d: Confirm(
                title=f"Revoke the invitation to {invited().email}?", button="Revoke", cancel=here,
                goes_with=["its link: it stops working"], note="This cannot be undone: invite them again instead.",
            ),
        ),
    }  # fmt: skip
    return dispatch(request, writes, show)


# -- explain and audit ---------------------------------------------------------------------------------------------


@console_view
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


@console_view
def audit(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The audit log of ``org`` and its subtree, filtered (a bad filter is a form error, 400, and no event is
    listed as if it matched), searched, paginated, each change in words; ``format=csv`` exports what the filters
    keep."""
    org = fetch_org(request, org_id, "audit.view")
    form = audit_log.filter_form(org, request.GET)
    valid = not form.is_bound or form.is_valid()
    data = form.cleaned_data if form.is_bound and valid else {}
    events = audit_log.filtered_events(org, data) if valid else AuditEvent.objects.none()
    if request.GET.get("format") == "csv" and valid:
        return _audit_csv(org, events)
    listing = paginate(request, events)
    rows = audit_log.describe(listing.page, org.tenant_id)
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    return render_org_page(
        request, "access/audit.html", org, status=200 if valid else 400, form=form, listing=listing, rows=rows,
        csv_link=f"?{query.urlencode()}&format=csv" if query else "?format=csv",
        org_choices=_with_chosen(audit_log.org_choices(org), data.get("org")),
        more_filters=audit_log.more_filters(form, org), tab="audit",
    )  # fmt: skip


def _with_chosen(choices: list[tuple[str, str]], chosen: Organization | None) -> list[tuple[str, str]]:
    """The menu's organizations, with the chosen one even when it lies beyond the menu's cap."""
    if chosen is None or any(value == str(chosen.pk) for value, _ in choices):
        return choices
    return [*choices, (str(chosen.pk), chosen.name)]


def _audit_csv(org: Organization, events: Any) -> HttpResponse:
    """Every event the filters keep (not a page), a row each: the changes in words (ids by name, resolved per chunk
    of 500 events), and last the changes as recorded (JSON) for a program."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{org.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(["time", "actor", "action", "org", "target_type", "target", "changes", "ip", "changes_json"])
    chunk: list[AuditEvent] = []

    def flush() -> None:
        for row in audit_log.describe(chunk, org.tenant_id):
            e = row.event
            writer.writerow([csv_cell(v) for v in (
                e.created_at.isoformat(), e.actor_name, e.action, e.org.name if e.org else "", e.target_type,
                e.target_name, row.changes_text(), e.ip, json.dumps(e.changes, sort_keys=True),
            )])  # fmt: skip
        chunk.clear()

    for event in events.iterator(chunk_size=500):
        chunk.append(event)
        if len(chunk) == 500:
            flush()
    flush()
    return response


# -- the tenant's people (tenant administrators) ---------------------------------------------------------------------


@console_view
def people(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The tenant's members, for its administrators: make or unmake a tenant administrator, remove someone from the
    tenant (with everything that gives them access in it). Accounts are their owners': nothing here edits one."""
    org = fetch_org(request, org_id, policy.TENANT_ADMIN)
    tenant = org.tenant
    here = reverse("org-people", args=[org.pk])

    def member() -> Any:
        found = selectors.tenant_memberships(tenant).filter(user_id=parse_uuid(request.POST.get("user"))).first()
        if found is None:
            raise NotFound()
        return found

    def remove(d: dict[str, Any]) -> Any:
        found = member()
        remove_tenant_member(actor=request.user, tenant=tenant, user=found.user, version=d["version"])
        return found

    def admin(is_admin: bool) -> Any:
        def run(d: dict[str, Any]) -> Any:
            found = member()
            set_tenant_admin(actor=request.user, tenant=tenant, user=found.user, is_admin=is_admin,
                             version=d["version"])  # fmt: skip
            return found

        return run

    writes = {
        "remove": Write(
            run=remove, done=lambda m: f"{m.user.username} was removed from {tenant.name}.", then=lambda m: here,
            confirm=lambda d: Confirm(
                title=f"Remove {member().user.username} from {tenant.name}?", button="Remove", cancel=here,
                goes_with=["every role they hold in its organizations and projects", "their team memberships",
                           "their seat (and tenant administration)"],
                note="This cannot be undone: invite them again to bring them back.",
            ),
        ),
        "make-admin": Write(run=admin(True), done=lambda m: f"{m.user.username}'s membership was changed.",
                            then=lambda m: here),
        "unmake-admin": Write(run=admin(False), done=lambda m: f"{m.user.username}'s membership was changed.",
                              then=lambda m: here),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        search = search_term(request)
        listing = paginate(request, selectors.tenant_memberships(tenant, search))
        return render_org_page(
            request, "access/people.html", org, page=listing.page, listing=listing, search=search, tab="people",
            error=context.get("error"),
        )  # fmt: skip

    return dispatch(request, writes, show)


# -- project members -----------------------------------------------------------------------------------------------


@console_view
def project_members(request: HttpRequest, org_id: UUID, project_id: UUID) -> HttpResponse:
    """A project's own grants (a role on this project only): listed with member.view, changed with member.manage."""
    project = fetch_project(request, org_id, project_id, "member.view")
    here = reverse("project-members", args=[org_id, project.pk])

    def granted() -> Any:
        grant = selectors.grant_by_id(parse_uuid(request.POST.get("grant")))
        if grant is None or getattr(grant, "content_object_id", None) != project.pk:
            raise NotFound()
        return grant

    def removal(grant: Any) -> tuple[Confirm, Undo]:
        return _removal(grant, f"the project {project.name}", here, below=False)

    def remove(d: dict[str, Any]) -> Undo:
        grant = granted()
        undo = removal(grant)[1]  # read before the grant goes
        apply_removal(actor=request.user, grant=grant, version=d["version"])
        return undo

    def asking(d: dict[str, Any]) -> Confirm:
        grant = granted()
        return replace(removal(grant)[0], impact=preview_removal(actor=request.user, grant=grant, version=d["version"]))

    writes = {
        "": _add_member(request, project, project.org, "Member added to the project.", here),
        # The undo of a removal: the same holder, role and expiry on the project again (refused if things moved on).
        "restore": _add_member(request, project, project.org, "The member is back, with the same role.", here),
        "remove": Write(
            capability="member.manage",
            on=project,
            run=remove,
            done="Member removed from the project.",
            then=lambda r: here,
            confirm=asking,
            undo=lambda undo: undo,
        ),
    }

    def show(context: dict[str, Any]) -> HttpResponse:
        can_manage = policy.can(request.user, "member.manage", project)
        form = context.get("form", MemberForm(org=project.org, viewer=request.user) if can_manage else None)
        return render_org_page(
            request, "access/project_members.html", project.org, project=project,
            members=selectors.project_members(project), form=form, can_manage=can_manage, error=context.get("error"),
        )  # fmt: skip

    return dispatch(request, writes, show)
