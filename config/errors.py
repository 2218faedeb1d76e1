"""Domain errors raised by services and the policy, translated to HTTP by the console and the API.

Services never return HTTP responses; they raise one of these and each face maps them the same way:
NotFound → 404, Forbidden → 403 {"detail", "code"}, Conflict → 409 {"detail", "code"}, Busy → 503 {"detail", "code"}
with Retry-After. Bad field input is a
django.core.exceptions.ValidationError (→ 400 with field messages).
"""


class DomainError(Exception):
    status = 400
    default_code = "error"

    def __init__(self, detail: str, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code


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
