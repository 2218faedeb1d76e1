"""Every ``code`` an error body of the API can carry, with what it means: the ``Error.code`` enum of the schema.

Programs branch on these codes (the sentence in ``detail`` is for people and may change), so the set is part of the
contract: a code is added here before any view or service raises it. Under the test suite a middleware checks every
API error answer against this table (``UndeclaredErrorCode``), and tests/api checks that the source raises no
literal code that is not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

ERROR_CODES: dict[str, str] = {
    # -- the plumbing: authentication, parsing, routing, limits
    "not_authenticated": "No credentials were sent.",
    "authentication_failed": "The credentials sent are not valid (unknown, expired or revoked token).",
    "permission_denied": "The object is visible but the caller lacks the capability.",
    "not_found": "Not found, or not visible to the caller.",
    "method_not_allowed": "The path does not answer this HTTP method.",
    "not_acceptable": "The Accept header asks for a format the API does not produce.",
    "unsupported_media_type": "The body's content type is not one the operation reads (JSON, or multipart for files).",
    "parse_error": "The body is not valid JSON (or not a valid multipart form).",
    "bad_request": "The request is malformed.",
    "invalid": "A field's value is not valid (field errors say which).",
    "invalid_characters": "A body field, parameter or header holds NUL or an unpaired surrogate.",
    "throttled": "Too many requests: wait for Retry-After seconds.",
    "locked_out": "Too many failed log-ins from this address or for this user.",
    "busy": "A lock the write needs stayed taken: try again after Retry-After seconds.",
    "stale": "If-Match names a version that is no longer current.",
    "conflict": "The request contradicts the current state (a unique value taken concurrently).",
    "error": "An error without a more specific code.",
    "server_error": "The server failed: the request id in X-Request-Id identifies it in the logs.",
    "idempotency_key_reused": "The Idempotency-Key was used before with a different request.",
    "idempotency_in_progress": "A request with the same Idempotency-Key is still being processed.",
    "idempotency_key_invalid": "The Idempotency-Key header is empty or longer than 255 characters.",
    # -- sign-in, tokens, accounts
    "invalid_login": "The username or password is wrong.",
    "otp_required": "The account has a second factor: send its current code as otp.",
    "otp_invalid": "The one-time code is wrong or was used already.",
    "no_device": "The account has no confirmed second-factor device.",
    "confirmed": "The device is confirmed already.",
    "credentials_changed": "The account's password changed meanwhile: authenticate again.",
    "token_invalid": "The token (reset, verification, enrollment) is unknown, used or expired.",
    "email_taken": "The e-mail address belongs to another account.",
    "email_unverified": "The e-mail address must be verified first.",
    "username_taken": "The username is taken.",
    "signup_disabled": "Sign-up is disabled on this installation.",
    "superuser_only": "Only a superuser may do this.",
    # -- authentication fences (access/fences.py)
    "sso_required": "The tenant requires signing in through its identity provider.",
    "2fa_required": "The organization requires a session or token verified with a second factor.",
    # -- tenants, plans, single sign-on, domains
    "plan_limit": "The tenant's plan does not allow this.",
    "plan_change_forbidden": "Only a superuser changes a tenant's plan.",
    "plan_downgrade_blocked": "The tenant uses what the lower plan does not allow.",
    "last_tenant_admin": "The tenant would be left without an administrator.",
    "cross_tenant": "The objects belong to different tenants.",
    "sso_untested": "Enforcing single sign-on needs a successful test sign-in after the last change.",
    "sso_no_domain": "Enforcing single sign-on needs a verified e-mail domain.",
    "identity_not_configured": "Workload identity is not set up: Canopy has no signing key yet.",
    "domain_claimed": "The domain is claimed by this tenant already.",
    "domain_taken": "The domain is verified by another tenant.",
    # -- organizations and projects
    "root": "The root organization cannot do this (be moved, deleted or inherit).",
    "cycle": "An organization cannot move into its own subtree.",
    "parent_deleted": "The parent organization is deleted.",
    "not_deleted": "The organization is not deleted.",
    "deleted_with_parent": "The organization was deleted with its parent: restore the parent.",
    "restore_window": "The restore window has passed.",
    "name_taken": "The name is taken at this place.",
    "project_not_empty": "The project still holds tasks.",
    # -- members, roles, teams, invitations
    "already_member": "The user holds this grant already.",
    "already_invited": "A pending invitation for this address exists.",
    "escalation": "Nobody grants more than they hold.",
    "builtin_role": "Built-in roles cannot be changed or deleted.",
    "role_in_use": "The role is still granted.",
    "self_add": "You cannot add yourself.",
    "invitation_expired": "The invitation has expired.",
    "invitation_revoked": "The invitation was revoked.",
    "invitation_used": "The invitation was accepted already.",
    "invitation_email_mismatch": "The invitation was sent to another e-mail address.",
    # -- shared resources
    "locked": "A declaration above is locked: it cannot be overridden or hidden here.",
    "overridden_below": "Locking is refused while organizations below override the item.",
    "already_hidden": "The item is hidden here already.",
    "not_on_development_team": "Only the component's development team pushes versions.",
    "version_exists": "The component has this version already.",
    "sharing_disabled": "The organization's settings do not allow task sharing.",
    # -- tasks, runs, runtimes
    "invalid_step": "A task step is not valid.",
    "stop_requested": "A stop was requested already.",
    "run_finished": "The run is finished: there is nothing to stop.",
    "placement": "No runtime may take the run: the task's or the default runtime is not allowed or not available.",
    "runtime_busy": "The runtime still has runs in flight.",
    "platform_default": "The runtime is the platform's default.",
    "audience_invalid": "The workload identity audience is not valid.",
    "audience_not_declared": "The task's steps do not declare this audience.",
    "identity_token_limit": "The run has received as many identity tokens as it may.",
    "run_stopping": "The run is stopping: no new identity token.",
    "rotating": "The signing keys are being rotated: try again.",
    "rotation_too_soon": "The next signing key is not published long enough yet.",
    # -- the runtime agents' protocol
    "enrollment_token_invalid": "The enrollment token is unknown, used or expired.",
    "instance_mismatch": "The agent token belongs to another agent instance.",
    "instance_taken": "The agent instance id is enrolled on another runtime.",
    "lease_lost": "The lease on the run expired or was taken over.",
    "invalid_status": "The finish status is not one an agent may report.",
    "batch_too_large": "Too many log lines in one batch.",
    "seq_gap": "Log lines are missing before this batch: resend from next_seq.",
    "seq_order": "The batch's log lines are not in order.",
    # -- governance: review
    "grants_not_found": "Some grant ids are not in this organization's access review: nothing was changed.",
    "grants_refused": "Every grant of the bulk request was refused (each reason listed): nothing was changed.",
}

ERROR_CODE_CHOICES = sorted(ERROR_CODES.items())  # (code, what it means): the enum and its documentation


class UndeclaredErrorCode:
    """Under the test suite only (config.settings): an API error answer whose ``code`` is not in ERROR_CODES fails
    the test that caused it, so the enum the schema publishes cannot fall behind what the code raises."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
            data = getattr(response, "data", None)
            if data is None and not getattr(response, "streaming", False):
                data = json.loads(response.content or b"null")
            code = data.get("code") if isinstance(data, dict) else None
            if isinstance(code, str) and code not in ERROR_CODES:
                raise AssertionError(f"{request.path} answered the error code {code!r}, not in config.error_codes")
        return response
