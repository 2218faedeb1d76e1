"""The console's runtime pages (/o/<org-uuid>/runtimes/…): an org's effective runtime list with status, registering a
local runtime (its enrollment token and agent command shown once), and a runtime's page (instances, pause/resume,
revoke, a new enrollment token, edit, delete).

Like every console view (config.console): fetched and authorized through the policy (404 when the org or runtime is
not visible, 403 without the capability), written only through runtimes.services with ``dispatch`` (field errors
400, Conflict and Stale 409). A page showing an enrollment token is the answer to the POST that made it, marked
``no-store``: the token is never shown again (only its hash is kept).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.debug import sensitive_variables

from access import policy
from config.console import (
    ActionForm,
    Confirm,
    Undo,
    Write,
    console_view,
    dispatch,
    fetch,
    fetch_org,
    goes_with,
    opened,
    parse_uuid,
    render_org_page,
    without_version,
)
from config.errors import NotFound
from orgs.models import Organization
from resources.models import Hidden
from resources.services.declarations import unhide
from runtimes import selectors, services
from runtimes.forms import HideRuntimeForm, RuntimeEditForm, RuntimeForm
from runtimes.models import AgentToken, Runtime

TAB = "runtimes"


def _page(request: HttpRequest, template: str, org: Organization, context: dict[str, Any], **defaults: Any) -> Any:
    return render_org_page(request, template, org, tab=TAB, **(defaults | context))


@sensitive_variables("enrollment")
def _enrolled(request: HttpRequest, org: Organization, enrollment: services.Enrollment, *, new: bool) -> HttpResponse:
    """The one page that shows an enrollment token and the agent command (never cached, never shown again)."""
    response = render_org_page(
        request, "runtimes/enrolled.html", org, tab=TAB, runtime=enrollment.runtime, raw=enrollment.raw,
        command=enrollment.command, expires_at=enrollment.token.expires_at, new=new,
        detail=reverse("runtime", args=[org.pk, enrollment.runtime.pk]),
    )  # fmt: skip
    add_never_cache_headers(response)
    return response


@console_view
def runtimes(request: HttpRequest, org_id: UUID) -> HttpResponse:
    """The runtimes usable in the org (declared here or above, or offered by the platform), each with where it comes
    from and its status; for Admins, the register form and hiding an inherited or platform runtime here."""
    org = fetch_org(request, org_id, "runtime.view")
    user = request.user
    here = reverse("runtimes", args=[org.pk])

    def register(d: dict[str, Any]) -> services.Enrollment:
        return services.create_local_runtime(actor=user, org=org, **d)

    def unhide_runtime(d: dict[str, Any]) -> None:
        hidden_id = parse_uuid(request.POST.get("hidden"))
        if hidden_id is None:
            raise NotFound()
        hidden = Hidden.objects.filter(org=org, kind=Runtime.KIND, pk=hidden_id).select_related("org").first()
        if hidden is None:
            raise NotFound()
        unhide(actor=user, hidden=hidden)

    writes = {
        "create": Write(
            capability="runtime.manage", on=org, run=register, done="The runtime was registered.",
            then=lambda enrollment: _enrolled(request, org, enrollment, new=True), form=RuntimeForm, form_key="form",
        ),
        "hide": Write(
            capability="runtime.manage", on=org,
            run=lambda d: services.hide_runtime(actor=user, org=org, name=d["name"]),
            done="The runtime is hidden here and below.", then=lambda h: here, form=HideRuntimeForm,
            form_key="hide_form", undo=lambda hidden: Undo(here, {"action": "unhide", "hidden": hidden.pk}),
        ),
        "unhide": Write(
            capability="runtime.manage", on=org, run=unhide_runtime, done="The runtime is usable here again.",
            then=lambda r: here,
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        rows = selectors.effective_runtimes(org, viewer=user)
        return _page(
            request, "runtimes/list.html", org, context,
            rows=rows, can_manage=policy.can(user, "runtime.manage", org), form=RuntimeForm(),
            hidden=list(Hidden.objects.filter(org=org, kind=Runtime.KIND).order_by("name")),
        )  # fmt: skip

    return dispatch(request, writes, show)


def _fetch_runtime(request: HttpRequest, org: Organization, runtime_id: UUID) -> Runtime:
    """A runtime seen from ``org``: declared on its path, or a global one offered to its tenant (404 otherwise)."""
    on_path = Q(org__tree_id=org.tree_id, org__lft__lte=org.lft, org__rght__gte=org.rght, org__deleted_at__isnull=True)
    offered = selectors.offered_globals(org.tenant_id).values("pk")
    queryset = Runtime.objects.filter(on_path | Q(org__isnull=True, pk__in=offered)).select_related("org__tenant")
    return fetch(request, "runtime.view", queryset, pk=runtime_id)


@console_view
def runtime_detail(request: HttpRequest, org_id: UUID, runtime_id: UUID) -> HttpResponse:
    org = fetch_org(request, org_id, "runtime.view")
    runtime = _fetch_runtime(request, org, runtime_id)
    user = request.user
    here = reverse("runtime", args=[org.pk, runtime.pk])
    back = reverse("runtimes", args=[org.pk])
    is_local = runtime.org_id is not None

    def edit(d: dict[str, Any]) -> Runtime:
        fields = without_version(d)
        if not is_local:
            fields.pop("locked", None)
        return services.update_runtime(actor=user, runtime=runtime, version=d["version"], **fields)

    writes = {
        "edit": Write(
            capability="runtime.manage", on=runtime, run=edit, done="Your changes were saved.", then=lambda r: here,
            form=RuntimeEditForm, form_key="edit_form",
        ),
        "pause": Write(
            capability="runtime.manage", on=runtime,
            run=lambda d: services.pause(actor=user, runtime=runtime, version=d["version"]),
            done="The runtime is paused: it takes no new runs.", then=lambda r: here,
        ),
        "resume": Write(
            capability="runtime.manage", on=runtime,
            run=lambda d: services.resume(actor=user, runtime=runtime, version=d["version"]),
            done="The runtime is resumed.", then=lambda r: here,
        ),
        "revoke": Write(
            capability="runtime.manage", on=runtime, run=lambda d: services.revoke(actor=user, runtime=runtime),
            done=lambda n: f"{n} agent token(s) revoked: its agents must be enrolled again.", then=lambda r: here,
            confirm=lambda d: Confirm(
                title=f"Revoke every agent of {runtime.name}?", button="Revoke agents", cancel=here,
                goes_with=[f"{AgentToken.objects.filter(runtime=runtime, revoked_at__isnull=True).count()} agent "
                           "token(s): their next call is refused", "every unused enrollment token"],
                note="This cannot be undone: its agents must be enrolled again (a new enrollment token) to serve it.",
            ),
        ),
        "token": Write(
            capability="runtime.manage", on=runtime,
            run=lambda d: services.new_enrollment_token(actor=user, runtime=runtime),
            then=lambda enrollment: _enrolled(request, org, enrollment, new=False),
        ),
        "delete": Write(
            capability="runtime.manage", on=runtime,
            run=lambda d: services.delete_runtime(actor=user, runtime=runtime, version=d["version"]),
            done=f"Runtime {runtime.name} was deleted.", then=lambda r: back,
            confirm=lambda d: Confirm(
                title=f"Delete the runtime {runtime.name}?", button="Delete runtime", cancel=here,
                goes_with=goes_with(runtime),
                note="This cannot be undone. Tasks that run there need another runtime; past runs keep its name.",
            ),
        ),
    }  # fmt: skip

    def show(context: dict[str, Any]) -> HttpResponse:
        row = selectors.row_for(runtime, org)
        initial = opened(
            runtime, name=runtime.name, description=runtime.description, labels=", ".join(runtime.labels),
            region=runtime.region, sovereign=runtime.sovereign, locked=runtime.locked,
        )  # fmt: skip
        return _page(
            request, "runtimes/detail.html", org, context,
            runtime=runtime, row=row, instances=selectors.instances_of(runtime), back=back, is_local=is_local,
            can_manage=policy.can(user, "runtime.manage", runtime), edit_form=RuntimeEditForm(initial=initial),
            action_form=ActionForm(initial=opened(runtime)),
        )  # fmt: skip

    return dispatch(request, writes, show)
