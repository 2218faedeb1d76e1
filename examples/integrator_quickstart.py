"""Canopy's integrator quick start: an integrator's day with the Python client generated from Canopy's OpenAPI schema.

Generate the client (a package named ``canopy_client``) from your server's schema, then run this script with an
account that administers a tenant (every step needs the capability it names; a tenant administrator has them all)::

    pip install openapi-python-client
    openapi-python-client generate --url https://canopy.example.com/api/v1/schema/ --meta none \\
        --config scripts/api_client/generator.yaml --output-path canopy_client
    python examples/integrator_quickstart.py --base-url https://canopy.example.com --username you --password …

It uses nothing but the generated client (``canopy_client.api.<tag>.<operation>``, named after the operation ids:
``createToken`` → ``create_token``) and its typed models, and checks what it is answered: it exits non-zero at the
first step that goes wrong. Everything it creates lives in one new organization under your root organization,
deleted again at the end (restorable for a while: ``restoreOrg``), unless you pass ``--keep``.

The project's CI runs it against a live server (``scripts/api_client_check``), after ``mypy --strict`` on it and on
the generated client: if it stops type-checking, a generated client's signature changed, and integrators' code with
it.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import uuid
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from canopy_client import AuthenticatedClient, Client, errors
from canopy_client.api.auth import create_token
from canopy_client.api.credentials import get_credential
from canopy_client.api.invitations import accept_invitation
from canopy_client.api.lookup_tables import list_lookup_rows
from canopy_client.api.orgs import (
    create_credential,
    create_invitation,
    create_lookup_table,
    create_org,
    create_project,
    delete_org,
    get_effective_config,
    get_org,
    list_audit_events,
    list_org_children,
    list_orgs,
)
from canopy_client.api.projects import create_task
from canopy_client.api.runs import get_run, list_run_logs
from canopy_client.api.tasks import list_task_runs, run_task
from canopy_client.models import (
    CredentialKind,
    CredentialWriteRequest,
    CredentialWriteRequestSecret,
    Error,
    ErrorCode,
    InvitationAcceptRequest,
    InvitationCreateRequest,
    LogLevel,
    LogStepRequest,
    LogStepType,
    LookupRowRequest,
    LookupTableWriteRequest,
    Org,
    OrgCreateRequest,
    ProjectWriteRequest,
    RunStatus,
    TaskWriteRequest,
    TokenCreateRequest,
    ValidationError,
)
from canopy_client.types import Response, Unset

T = TypeVar("T")
Item = TypeVar("Item")


class Failed(Exception):
    """A step's answer was not the one the contract promises."""


def say(step: str, what: str) -> None:
    print(f"  {step:<22} {what}")


def ok(step: str, response: Response[T | Error | ValidationError], status: HTTPStatus = HTTPStatus.OK) -> T:
    """The answer's typed body, when it has the expected status; else the error the server sent, as the failure."""
    parsed = response.parsed
    if response.status_code != status or parsed is None or isinstance(parsed, (Error, ValidationError)):
        raise Failed(f"{step}: expected {status.value}, got {response.status_code.value}: {describe(parsed)}")
    return parsed


def describe(parsed: object) -> str:
    if isinstance(parsed, Error):
        return f"{parsed.code.value}: {parsed.detail}"
    if isinstance(parsed, ValidationError):
        return f"field errors {parsed.to_dict()}"
    return repr(parsed)


def refused(step: str, response: Response[T | Error | ValidationError], status: HTTPStatus, code: ErrorCode) -> Error:
    """Typed error handling: the answer is ``status`` with the shared ``Error`` body, its ``code`` the one expected."""
    parsed = response.parsed
    if response.status_code != status or not isinstance(parsed, Error) or parsed.code != code:
        raise Failed(
            f"{step}: expected {status.value} {code.value}, got {response.status_code.value}: {describe(parsed)}"
        )
    say(step, f"{status.value} {parsed.code.value}: {parsed.detail}")
    return parsed


class Page(Protocol[Item]):
    """What every paginated list of the API answers (``PaginatedOrgList``, ``PaginatedRunList``, …)."""

    @property
    def count(self) -> int: ...
    @property
    def results(self) -> list[Item]: ...
    @property
    def next_(self) -> str | Unset | None: ...


def every(fetch: Callable[[int], Page[Item]]) -> Iterator[Item]:
    """Every item of a paginated list, page after page (``fetch(n)`` answers page n), until one has no ``next``."""
    number, seen = 1, 0
    while True:
        page = fetch(number)
        yield from page.results
        seen += len(page.results)
        if not isinstance(page.next_, str):
            if seen != page.count:
                raise Failed(f"{seen} items on {number} pages, but their count says {page.count}")
            return
        number += 1


def day(base_url: str, username: str, password: str, keep: bool, page_size: int) -> None:
    started = datetime.datetime.now(datetime.UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)

    # -- an access token ------------------------------------------------------------------------------------------
    token = ok(
        "token",
        create_token.sync_detailed(client=anonymous, body=TokenCreateRequest(username=username, password=password)),
        HTTPStatus.CREATED,
    )
    say("token", f"issued, expires {token.expires_at:%Y-%m-%d %H:%M} UTC")
    client = AuthenticatedClient(base_url=base_url, token=token.token, raise_on_unexpected_status=True)

    # -- the organizations: every page of the list, then the tree from the root down --------------------------------
    orgs = list(
        every(lambda n: ok(f"orgs page {n}", list_orgs.sync_detailed(client=client, page=n, page_size=page_size)))
    )
    roots = [org for org in orgs if org.parent is None]
    say("orgs", f"{len(orgs)} visible, {page_size} a page; roots: {', '.join(o.name for o in roots)}")
    if not roots:
        raise Failed("orgs: no root organization visible: sign in as a tenant administrator")
    root = roots[0]

    def walk(org: Org, depth: int) -> int:
        children = list(
            every(
                lambda n: ok(
                    f"children of {org.name} page {n}",
                    list_org_children.sync_detailed(org.id, client=client, page=n, page_size=page_size),
                )
            )
        )
        if depth < 3:
            print(f"  {'':<22} {'  ' * depth}{org.name} ({len(children)} children)")
        return 1 + sum(walk(child, depth + 1) for child in children)

    say("tree", f"walking {root.name}")
    reached = walk(root, 0)
    say("tree", f"{reached} organizations in {root.name}'s tree")

    # -- a child organization for everything else -----------------------------------------------------------------
    org = ok(
        "create child",
        create_org.sync_detailed(
            client=client,
            body=OrgCreateRequest(name=f"Quick start {stamp}", parent=root.id, description="integrator_quickstart"),
        ),
        HTTPStatus.CREATED,
    )
    say("create child", f"{org.name} ({org.id}), path {' / '.join(crumb.name for crumb in org.path)}")
    try:
        rest_of_the_day(base_url, client, anonymous, org, stamp, started, username)
    finally:
        if not keep:
            deleted = delete_org.sync_detailed(org.id, client=client)
            if deleted.status_code != HTTPStatus.NO_CONTENT:
                raise Failed(f"clean up: deleting {org.name} answered {deleted.status_code.value}")
            say("clean up", f"deleted {org.name} (restorable: restoreOrg)")


def rest_of_the_day(
    base_url: str,
    client: AuthenticatedClient,
    anonymous: Client,
    org: Org,
    stamp: str,
    started: datetime.datetime,
    username: str,
) -> None:
    # -- invite someone; they accept with a new account and sign in -----------------------------------------------
    invited = ok(
        "invite",
        create_invitation.sync_detailed(
            org.id, client=client, body=InvitationCreateRequest(email=f"guest-{stamp}@example.com", role="guest")
        ),
        HTTPStatus.CREATED,
    )
    say("invite", f"{invited.email} as {invited.role}, expires {invited.expires_at:%Y-%m-%d}")
    invitation_token = urlsplit(invited.accept_url).fragment  # the token rides in the link's fragment
    guest_name, guest_password = f"guest-{stamp}", f"pw-{uuid.uuid4()}"
    member = ok(
        "accept invitation",
        accept_invitation.sync_detailed(
            client=anonymous,
            body=InvitationAcceptRequest(token=invitation_token, username=guest_name, password=guest_password),
        ),
    )
    say("accept invitation", f"{guest_name} is now {member.role} of {org.name}")
    guest_token = ok(
        "guest token",
        create_token.sync_detailed(
            client=anonymous, body=TokenCreateRequest(username=guest_name, password=guest_password)
        ),
        HTTPStatus.CREATED,
    )
    guest = AuthenticatedClient(base_url=base_url, token=guest_token.token, raise_on_unexpected_status=True)

    # -- a project, a task with typed steps, and a run ------------------------------------------------------------
    project = ok(
        "project",
        create_project.sync_detailed(org.id, client=client, body=ProjectWriteRequest(name="Orders sync")),
        HTTPStatus.CREATED,
    )
    say("project", f"{project.name} ({project.id})")
    task = ok(
        "task",
        create_task.sync_detailed(
            project.id,
            client=client,
            body=TaskWriteRequest(
                name="Say hello",
                steps=[
                    LogStepRequest(
                        type_=LogStepType.LOG, name="hello", message="Hello from the quick start", level=LogLevel.INFO
                    )
                ],
            ),
        ),
        HTTPStatus.CREATED,
    )
    say("task", f"{task.name} ({task.id})")
    key = str(uuid.uuid4())
    run = ok("run", run_task.sync_detailed(task.id, client=client, idempotency_key=key), HTTPStatus.CREATED)
    again = ok("run again", run_task.sync_detailed(task.id, client=client, idempotency_key=key), HTTPStatus.CREATED)
    if again.id != run.id:
        raise Failed(f"run again: the same Idempotency-Key made a second run ({again.id} besides {run.id})")
    say("run", f"{run.id} {run.status.value} on {run.runtime_name or 'no runtime yet'}; same key, same run")

    # -- runs and their logs -------------------------------------------------------------------------------------
    runs = list(
        every(
            lambda n: ok(f"runs page {n}", list_task_runs.sync_detailed(task.id, client=client, page=n, page_size=10))
        )
    )
    if [r.id for r in runs] != [run.id]:
        raise Failed(f"runs: expected the one run {run.id}, got {[str(r.id) for r in runs]}")
    current = ok("get run", get_run.sync_detailed(run.id, client=client))
    if current.status not in set(RunStatus):
        raise Failed(f"get run: unknown status {current.status}")
    lines = list(every(lambda n: ok(f"logs page {n}", list_run_logs.sync_detailed(run.id, client=client, page=n))))
    say("runs and logs", f"1 run, {current.status.value}; {len(lines)} log lines so far (no agent runs it here)")
    for line in lines[:5]:
        say("", f"{line.seq} {line.level.value}: {line.message}")

    # -- a credential with a secret: written, never read back ----------------------------------------------------
    secret_value = f"sk-{uuid.uuid4()}"
    secret = CredentialWriteRequestSecret()
    secret["key"] = secret_value
    credential = ok(
        "credential",
        create_credential.sync_detailed(
            org.id,
            client=client,
            body=CredentialWriteRequest(name="Carrier API", kind=CredentialKind.API_KEY, secret=secret),
        ),
        HTTPStatus.CREATED,
    )
    read = get_credential.sync_detailed(credential.id, client=client)
    ok("read credential", read)
    if secret_value.encode() in read.content:
        raise Failed("credential: the secret came back")
    say("credential", f"{credential.name} ({credential.kind.value}); secret fields {credential.secret_fields}, unread")

    # -- a lookup table and its rows ------------------------------------------------------------------------------
    table = ok(
        "lookup table",
        create_lookup_table.sync_detailed(
            org.id,
            client=client,
            body=LookupTableWriteRequest(
                name="Countries",
                rows=[LookupRowRequest(key="DE", value="Germany"), LookupRowRequest(key="FR", value="France")],
            ),
        ),
        HTTPStatus.CREATED,
    )
    rows = list(
        every(lambda n: ok(f"lookup rows page {n}", list_lookup_rows.sync_detailed(table.id, client=client, page=n)))
    )
    say("lookup table", f"{table.name}: {', '.join(f'{r.key}={r.value}' for r in rows)}")

    # -- the organization's effective configuration ---------------------------------------------------------------
    config = ok("effective config", get_effective_config.sync_detailed(org.id, client=client))
    credentials = [] if isinstance(config.credentials, Unset) else config.credentials
    if credential.id not in {c.id for c in credentials}:
        raise Failed("effective config: the new credential is missing")
    say("effective config", f"{len(config.settings)} settings, {len(credentials)} credentials")

    # -- the audit log, filtered -------------------------------------------------------------------------------
    events = list(
        every(
            lambda n: ok(
                f"audit events page {n}",
                list_audit_events.sync_detailed(
                    org.id, client=client, actor=username, action="credential.create", since=started, page=n
                ),
            )
        )
    )
    if not any(e.target_name == credential.name for e in events):
        raise Failed(f"audit events: no credential.create by {username} for {credential.name}")
    say("audit events", f"{len(events)} credential.create by {username} since {started:%H:%M:%S}")

    # -- typed errors: each the shared Error (or ValidationError) model, with its code ---------------------------
    bad = create_org.sync_detailed(client=client, body=OrgCreateRequest(name="", parent=org.id))
    if bad.status_code != HTTPStatus.BAD_REQUEST or not isinstance(bad.parsed, ValidationError):
        raise Failed(f"400: expected field errors, got {bad.status_code.value}: {describe(bad.parsed)}")
    say("400 bad input", f"field errors for {', '.join(bad.parsed.additional_keys)}")
    refused(
        "403 forbidden",
        create_project.sync_detailed(org.id, client=guest, body=ProjectWriteRequest(name="Not mine")),
        HTTPStatus.FORBIDDEN,
        ErrorCode.PERMISSION_DENIED,
    )
    refused(
        "404 not found", get_org.sync_detailed(uuid.uuid4(), client=client), HTTPStatus.NOT_FOUND, ErrorCode.NOT_FOUND
    )
    refused(
        "409 duplicate name",
        create_project.sync_detailed(org.id, client=client, body=ProjectWriteRequest(name=project.name)),
        HTTPStatus.CONFLICT,
        ErrorCode.NAME_TAKEN,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--base-url", required=True, help="the server, e.g. https://canopy.example.com")
    parser.add_argument("--username", required=True, help="an account that administers a tenant")
    parser.add_argument("--password", required=True)
    parser.add_argument("--page-size", type=int, default=2, help="small, to walk several pages (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the organization it creates")
    args = parser.parse_args(argv)
    print(f"Canopy quick start against {args.base_url}")
    try:
        day(args.base_url.rstrip("/"), args.username, args.password, args.keep, args.page_size)
    except Failed as failure:
        print(f"FAILED {failure}", file=sys.stderr)
        return 1
    except errors.UnexpectedStatus as undocumented:  # a status the schema does not declare for the operation
        print(f"FAILED undocumented status {undocumented.status_code}: {undocumented.content[:500]!r}", file=sys.stderr)
        return 1
    print("All steps passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
