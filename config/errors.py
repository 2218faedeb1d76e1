"""Domain errors raised by services and the policy, translated to HTTP by the console and the API.

Services never return HTTP responses; they raise one of these and each face maps them the same way:
NotFound → 404, Forbidden → 403 {"detail", "code"}, Conflict → 409 {"detail", "code"}, Stale → 412 {"detail",
"code": "stale", "version", "changed_by", "changed_at"} with the current ETag, Busy → 503 {"detail", "code"} with
Retry-After. Bad field input is a django.core.exceptions.ValidationError (→ 400 with field messages).
Each error says its own body (``payload``) and headers (``headers``), so every face maps them with one rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class DomainError(Exception):
    status = 400
    default_code = "error"

    def __init__(self, detail: str, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code

    def payload(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code}

    def headers(self) -> dict[str, str]:
        return {}


class NotFound(DomainError):
    """The object does not exist or the caller may not see it: both answer the same."""

    status = 404
    default_code = "not_found"

    def __init__(self, detail: str = "Not found.", code: str | None = None):
        super().__init__(detail, code)


class Forbidden(DomainError):
    """The caller sees the object but lacks the capability, or a plan limit applies."""

    status = 403
    default_code = "permission_denied"

    def __init__(self, detail: str, code: str | None = None, *, capability: str | None = None):
        super().__init__(detail, code)
        # The capability the caller lacks, when one does: the console's 403 page names it in words and who can grant
        # it (issue #11 §1). Not part of the payload: the API's 403 body stays {"detail", "code"}.
        self.capability = capability


class PlanLimit(Forbidden):
    default_code = "plan_limit"


class Conflict(DomainError):
    """The request contradicts the current state: a name taken, a move into the own subtree, …"""

    status = 409
    default_code = "conflict"


class Busy(DomainError):
    """A lock the write needs stayed taken longer than it may wait: try again after ``retry_after`` seconds."""

    status = 503
    default_code = "busy"

    def __init__(self, detail: str, code: str | None = None, *, retry_after: int = 1):
        super().__init__(detail, code)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Stale(DomainError):
    """The caller changed a copy older than the row: someone saved in between (optimistic concurrency).

    Raised by ``config.concurrency.lock_for_update`` when the version the caller read (the API's ``If-Match``, the
    console form's hidden version) is not the row's. Carries the current version and, from the audit log, who made
    the last change and when, so the face can say so and the caller can reload."""

    status = 412
    default_code = "stale"

    def __init__(self, *, version: int, changed_by: str | None = None, changed_at: datetime | None = None):
        who = f" by {changed_by}" if changed_by else ""
        when = f" at {changed_at:%Y-%m-%d %H:%M} UTC" if changed_at else ""
        super().__init__(
            f"This was changed{who}{when} after you loaded it (now version {version}). Reload it and apply your "
            "change again.",
        )
        self.version = version
        self.changed_by = changed_by
        self.changed_at = changed_at

    def payload(self) -> dict[str, Any]:
        return {
            **super().payload(),
            "version": self.version,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }

    def headers(self) -> dict[str, str]:
        return {"ETag": f'"{self.version}"'}
