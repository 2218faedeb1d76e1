"""The access review page of the console: ``/o/<org>/review/`` (member.view there).

Filters (``subtree``, ``not_attested``, ``inactive``) are query parameters, so a filtered review is a link to share;
``?format=csv`` exports the filtered rows. A reviewer ticks rows and attests them (with a note) or revokes them; a
revocation goes through the confirmation page, which shows who loses which capability where (the impact preview:
the same revocation run and rolled back) before its button. Each grant is then decided on its own by
governance.review.service; the refused ones are named in the message, nothing changed for them.
"""

from __future__ import annotations

import csv
from typing import Any
from uuid import UUID

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from access import policy
from config.console import Confirm, Write, console_view, dispatch, fetch_org, render_org_page
from config.listing import paginate
from config.spreadsheet import cell as csv_cell
from governance.impact.engine import CapabilityPart, Scope, preview
from governance.models import GrantKind
from governance.review import service
from orgs.models import Organization

_FLAGS = ("subtree", "not_attested", "inactive")


class GrantIdsField(forms.Field):
    """The ticked rows: every ``grants`` value posted, as clean grant ids."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        if not value:
            raise ValidationError("Tick at least one row.")
        try:
            return service.clean_ids(list(value))
        except ValidationError as error:
            raise ValidationError(error.message_dict["grants"]) from None


class AttestForm(forms.Form):
    grants = GrantIdsField()
    note = forms.CharField(required=False, max_length=1000)


class RevokeForm(forms.Form):
    grants = GrantIdsField()


def _flags(request: HttpRequest) -> dict[str, bool]:
    return {name: request.GET.get(name, "") in ("1", "on", "true") for name in _FLAGS}


def _rows(request: HttpRequest, org: Organization) -> tuple[service.Review, list[service.Row]]:
    flags = _flags(request)
    found = service.review(org, viewer=request.user, subtree=flags["subtree"])
    return found, found.filtered(unattested=flags["not_attested"], inactive=flags["inactive"])


def _page(request: HttpRequest, org: Organization, context: dict[str, Any]) -> HttpResponse:
    found, rows = _rows(request, org)
    listing = paginate(request, rows)
    can_act = policy.can(request.user, "member.manage", org) or policy.is_tenant_admin(request.user, org.tenant_id)
    return render_org_page(
        request, "governance/review.html", org, review=found, rows=listing.page, listing=listing,
        flags=_flags(request), can_act=can_act, tab="review", error=context.get("error"),
        unattested_count=found.unattested_count, inactive_people=found.inactive_people,
    )  # fmt: skip


def _done(outcome: service.Outcome, verb: str) -> str:
    text = f"{len(outcome.done)} grant{'s' if len(outcome.done) != 1 else ''} {verb}."
    if outcome.refused:
        reasons = "; ".join(f"{r['grant']}: {r['detail']}" for r in outcome.refused)
        text += f" {len(outcome.refused)} refused, nothing changed for them: {reasons}"
    return text


def _revoke_question(request: HttpRequest, org: Organization, ids: list[str]) -> Confirm:
    """The confirmation of a bulk revocation: what each grant is, and its impact (the revocation rolled back)."""
    targets = service.resolve(org, request.user, ids)
    users: set[Any] = set()
    for target in targets:
        user = getattr(target.row, "user", None)
        users |= {user} if user is not None else set(target.row.group.user_set.all())
    impact = preview(
        lambda: service.revoke(actor=request.user, org=org, grant_ids=ids),
        Scope(root=org, users=users),
        describe=f"Revoke {len(ids)} grant{'s' if len(ids) != 1 else ''}",
        parts=[CapabilityPart()],
    )
    lines = [
        f"{t.holder}: {t.role_key} on {getattr(t.place, 'name', 'the tenant')}"
        + (" (tenant administrator)" if t.kind == GrantKind.TENANT_ADMIN else "")
        for t in targets
    ]
    return Confirm(
        title=f"Revoke {len(ids)} grant{'s' if len(ids) != 1 else ''}?", goes_with=lines, button="Revoke",
        note="Each revocation is recorded in the audit log; to undo one, grant the role again.", impact=impact,
    )  # fmt: skip


@console_view
def review(request: HttpRequest, org_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "member.view")
    if request.method != "POST" and request.GET.get("format") == "csv":
        return _csv(org, *_rows(request, org))
    here = request.get_full_path()
    writes = {
        "attest": Write(
            capability="member.view", on=org, form=AttestForm,
            run=lambda d: service.attest(actor=request.user, org=org, grant_ids=d["grants"], note=d["note"]),
            done=lambda outcome: _done(outcome, "attested"), then=lambda outcome: here,
        ),
        "revoke": Write(
            capability="member.view", on=org, form=RevokeForm,
            run=lambda d: service.revoke(actor=request.user, org=org, grant_ids=d["grants"]),
            done=lambda outcome: _done(outcome, "revoked"), then=lambda outcome: here,
            confirm=lambda d: _revoke_question(request, org, d["grants"]),
        ),
    }  # fmt: skip
    return dispatch(request, writes, lambda context: _page(request, org, context))


def _csv(org: Organization, found: service.Review, rows: list[service.Row]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="access-review-{org.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow([
        "grant", "kind", "username", "email", "team", "role", "source", "organization", "project", "granted_by",
        "granted_at", "expires_at", "last_seen", "attested_at", "attested_by", "not_attested", "inactive",
    ])  # fmt: skip
    for row in rows:
        writer.writerow([csv_cell(v) for v in (
            row.grant_id, row.kind, row.user.get_username() if row.user else "", row.user.email if row.user else "",
            row.team.name if row.team else "", row.role_key, row.source, row.org.name if row.org else "",
            row.project.name if row.project else "", row.granted_by.get_username() if row.granted_by else "",
            row.granted_at, row.expires_at, row.last_seen, row.attested_at, row.attested_by,
            "yes" if found.unattested(row) else "no", "yes" if found.inactive(row) else "no",
        )])  # fmt: skip
    return response
