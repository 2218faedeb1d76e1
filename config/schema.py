"""The OpenAPI schema's error answers, documented once for every operation.

Views declare their success bodies; this AutoSchema adds the errors the API's plumbing can answer, as shared
response components: ``Error`` {"detail", "code"} (config.api.exception_handler, config.hostile) and field errors
(``ValidationError``). The rules follow what can happen to any request of the operation:

- 400 ``BadRequest`` (field errors, or an Error such as ``invalid_characters`` or ``parse_error``): an operation
  with a body, query parameters or path parameters (the hostile-input middleware checks them all);
- 401 ``Unauthenticated``: an operation with authentication (a bad bearer token is refused even where anonymous
  callers are welcome);
- 403 ``Forbidden``: an authenticated operation that names an object (a capability is checked on it) or writes
  (capabilities, plan limits, and CSRF for the browser session);
- 404 ``NotFound``: an operation with path parameters (missing and invisible answer the same), or paginated (a
  page past the last one);
- 409 ``Conflict``: a write (the services' conflicts, and a unique value taken by a concurrent request);
- 412 ``PreconditionFailed``: a change or delete of a versioned object (a view with ``versioned = True``) whose
  ``If-Match`` names a version that is no longer current; such operations also declare the ``If-Match`` request
  header, and their 200 answers the ``ETag`` header (config.concurrency);
- 415 ``UnsupportedMediaType``: an operation with a body;
- 422 ``UnprocessableEntity``: an operation that takes an ``Idempotency-Key`` (the key came with another request);
- 429 ``Throttled``: a throttled view.

Headers (``document_headers`` and ``AutoSchema.document_integrator_headers``, components under
``components/headers``): ``X-Request-Id`` on every answer; ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` on the 2xx answers of the operations a rate limit counts and, with ``Retry-After``, on 429; the
``Idempotency-Key`` request header on creates and runs (idempotency/operations.py), whose 2xx answers may carry
``Idempotent-Replayed``; ``Deprecation``, ``Sunset`` and ``Link`` on the answers of a deprecated operation
(config/deprecation.py), which is marked ``deprecated: true``.

A view can still document an error itself (a specific description, or a status outside these rules): what the
view declares wins.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config import deprecation, ratelimit
from config.error_codes import ERROR_CODE_CHOICES
from config.operations import OPERATIONS
from idempotency.operations import IDEMPOTENT_OPERATIONS

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# -- OrgRef: every reference to an organization has this one named type (a UUID), so generated clients and readers
# see "an organization's id" and not just a string. The component is added by the postprocessing hook
# ``add_named_types``.
ORG_REF = {"$ref": "#/components/schemas/OrgRef"}
ORG_REF_SCHEMA = {
    "type": "string",
    "format": "uuid",
    "description": "An organization's id: GET /api/v1/orgs/{id} reads it.",
}


@extend_schema_field(ORG_REF)
class OrgRefField(serializers.UUIDField):
    """An organization's id, documented as ``OrgRef``. For ``serializers.UUIDField(source="org_id")`` and the like."""


@extend_schema_field(ORG_REF)
class RelatedOrgField(serializers.PrimaryKeyRelatedField):
    """A writable reference to an organization by id, documented as ``OrgRef`` (a PrimaryKeyRelatedField)."""


class StaleSerializer(serializers.Serializer):
    """A stale write (412): the version the caller read is no longer current."""

    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["stale"])
    version = serializers.IntegerField(help_text="The current version (also the response's ETag).")
    changed_by = serializers.CharField(allow_null=True, help_text="Who made the last change, from the audit log.")
    changed_at = serializers.DateTimeField(allow_null=True, help_text="When the last change was made.")


IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": 'The ETag of the version you read (e.g. "3"): the write is refused with 412 if the object has '
    "changed since. Without it the write applies to the current version.",
    "schema": {"type": "string"},
}
ETAG = {"description": 'The object\'s version, e.g. "3": send it back as If-Match.', "schema": {"type": "string"}}


class ErrorSerializer(serializers.Serializer):
    """An error: a sentence for people and a stable code for programs."""

    detail = serializers.CharField(help_text="What went wrong, in a sentence for people (it may change).")
    code = serializers.ChoiceField(
        choices=ERROR_CODE_CHOICES, help_text="What went wrong, for programs: stable (config/error_codes.py)."
    )
    field = serializers.CharField(required=False, help_text="invalid_characters in a JSON body: the field's path.")
    parameter = serializers.CharField(
        required=False, help_text="invalid_characters in a query parameter or form field: its name."
    )


VALIDATION_ERROR = {
    "type": "object",
    "description": "Field errors: each key a field of the request (or non_field_errors), each value its messages; "
    "nested like the field for lists and objects.",
    "additionalProperties": {
        "oneOf": [
            # a field's messages; for a list of objects, one field-error object per item
            {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}]}},
            {"type": "object", "description": "A nested object's field errors, keyed like this one."},
        ]
    },
}

# status → (component name, description)
RESPONSES = {
    "400": ("BadRequest", "Bad input: field errors, or an error such as invalid_characters or parse_error."),
    "401": ("Unauthenticated", "No valid credentials: a missing, invalid, expired or revoked token."),
    "403": ("Forbidden", "The object is visible but the capability is missing, a plan limit applies, or the "
                         "session's CSRF token is missing."),
    "404": ("NotFound", "Not found, or not visible to the caller: both answer the same."),
    "409": ("Conflict", "The request contradicts the current state (a name taken, a lock above, a change made at "
                        "the same time)."),
    "412": ("PreconditionFailed", "If-Match names a version that is no longer current: someone changed the object "
                                  "since you read it. The body says the current version, who changed it and when."),
    "415": ("UnsupportedMediaType", "The body's content type is not one this operation reads."),
    "429": ("Throttled", "Too many requests or failed log-ins: try again later."),
}  # fmt: skip


class AutoSchema(SpectacularAutoSchema):
    def _row(self) -> tuple[str, str] | None:
        prefix = str(settings.SPECTACULAR_SETTINGS["SCHEMA_PATH_PREFIX"])
        return OPERATIONS.get((self.method, str(self.path).removeprefix(prefix)))

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        # The operation's name and summary: its row in config/operations.py wins over what a view or the generator
        # says (tests/api fail on an operation without a row).
        if row := self._row():
            operation["operationId"], operation["summary"] = row
        responses = operation["responses"]
        if getattr(self.view, "versioned", False):
            if self.method in ("PATCH", "PUT", "DELETE"):
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "If-Match" for p in parameters):
                    parameters.append(dict(IF_MATCH))
            if self.method in ("GET", "PATCH", "PUT"):
                for status, response in responses.items():
                    if status.startswith("2") and isinstance(response, dict):
                        response.setdefault("headers", {})["ETag"] = dict(ETAG)
        for status in self.error_statuses(operation):
            responses.setdefault(status, self._error_response(status))
        self.document_integrator_headers(operation)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_statuses(self, operation: dict[str, Any]) -> list[str]:
        parameters = operation.get("parameters", [])
        located = {parameter.get("in") for parameter in parameters}
        paginated = any(p.get("in") == "query" and p.get("name") == "page" for p in parameters)
        has_body = "requestBody" in operation
        names_object = "path" in located
        writes = self.method not in SAFE_METHODS
        authenticated = bool(getattr(self.view, "authentication_classes", ()))
        statuses = []
        if has_body or located & {"query", "path"}:
            statuses.append("400")
        if authenticated:
            statuses.append("401")
            if names_object or writes:
                statuses.append("403")
        if names_object or paginated:
            statuses.append("404")
        if writes:
            statuses.append("409")
        if getattr(self.view, "versioned", False) and self.method in ("PATCH", "PUT", "DELETE"):
            statuses.append("412")
        if has_body:
            statuses.append("415")
        if ratelimit.throttled(self.view):
            statuses.append("429")
        return statuses

    def is_deprecated(self) -> bool:
        return deprecation.deprecation_of(self.view, self.method) is not None

    def document_integrator_headers(self, operation: dict[str, Any]) -> None:
        """Idempotency-Key (and its 422), RateLimit-* on 2xx, and a deprecation's headers and dates."""
        responses = operation["responses"]
        success = [r for status, r in responses.items() if status.startswith("2") and "$ref" not in r]
        if operation.get("operationId") in IDEMPOTENT_OPERATIONS:
            operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY))
            responses.setdefault("422", self._shared_error("UnprocessableEntity", UNPROCESSABLE))
            for response in success:
                response.setdefault("headers", {})["Idempotent-Replayed"] = _header("Idempotent-Replayed")
        if ratelimit.sends_headers(self.view):
            for response in success:
                response.setdefault("headers", {}).update({name: _header(name) for name in RATE_LIMIT_HEADERS})
        if (notice := deprecation.deprecation_of(self.view, self.method)) is not None:
            operation["description"] = "\n\n".join(filter(None, [operation.get("description"), notice.describe()]))
            for response in responses.values():
                if "$ref" not in response:
                    response.setdefault("headers", {}).update({name: _header(name) for name in DEPRECATION_HEADERS})

    def _shared_error(self, name: str, description: str) -> dict[str, Any]:
        component = ResolvedComponent(
            name=name,
            type=ResolvedComponent.RESPONSE,
            object=name,
            schema={
                "description": description,
                "content": {"application/json": {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}},
            },
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _error_response(self, status: str) -> dict[str, Any]:
        name, description = RESPONSES[status]
        serializer = StaleSerializer if status == "412" else ErrorSerializer
        error = self.resolve_serializer(serializer, "response").ref
        if status == "400":
            invalid = ResolvedComponent(
                name="ValidationError", type=ResolvedComponent.SCHEMA, object="ValidationError", schema=VALIDATION_ERROR
            )
            self.registry.register_on_missing(invalid)
            schema: dict[str, Any] = {"oneOf": [error, invalid.ref]}
        else:
            schema = error
        component = ResolvedComponent(
            name=name,
            type=ResolvedComponent.RESPONSE,
            object=name,
            schema={"description": description, "content": {"application/json": {"schema": schema}}},
        )
        self.registry.register_on_missing(component)
        return component.ref


# -- The headers integrators rely on (README, "REST API" and "API versioning and deprecation") ------------------------

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A key of your choosing (a UUID, say), new for each new request: sending the same request again "
    "with the same key within 24 hours answers the first answer again (with Idempotent-Replayed: true) without "
    "doing the work twice. The same key with another request answers 422 idempotency_key_reused; while the first "
    "request is still being served, 409 idempotency_in_progress. Keys are per user.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
UNPROCESSABLE = (
    "The Idempotency-Key was sent in the last 24 hours with another request (method, path or body): "
    "idempotency_key_reused."
)
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
DEPRECATION_HEADERS = ("Deprecation", "Sunset", "Link")
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id: the one you sent (1 to 200 characters of A-Z a-z 0-9 . _ -), else a new "
        "one. Every log line about the request names it: quote it to support.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,200}$"},
    },
    "RateLimit-Limit": {
        "description": "Requests allowed in the current window of the limit that counts this request.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window ends (the count starts again).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Idempotent-Replayed": {
        "description": "Present (true) when this is the first answer to an earlier request with the same "
        "Idempotency-Key, answered again: the work was not done twice.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Deprecation": {
        "description": "The operation is deprecated since this instant (RFC 9745: @ and Unix time).",
        "schema": {"type": "string", "examples": ["@1780272000"]},
    },
    "Sunset": {
        "description": "The operation stops answering at this HTTP-date (RFC 8594).",
        "schema": {"type": "string", "examples": ["Tue, 01 Jun 2027 00:00:00 GMT"]},
    },
    "Link": {
        "description": 'Where to read what replaces the operation: <url>; rel="deprecation".',
        "schema": {"type": "string"},
    },
}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def document_headers(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: ``X-Request-Id`` on every answer (operations' own and the shared
    responses), ``Retry-After`` and the RateLimit-* headers on the shared 429, and the header components used."""
    components = result.setdefault("components", {})
    shared = components.get("responses", {})
    for name, response in shared.items():
        response.setdefault("headers", {})["X-Request-Id"] = _header("X-Request-Id")
        if name == RESPONSES["429"][0]:
            response["headers"].update({name: _header(name) for name in ("Retry-After", *RATE_LIMIT_HEADERS)})
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                if "$ref" not in response:
                    response.setdefault("headers", {})["X-Request-Id"] = _header("X-Request-Id")
    used = _header_refs([result.get("paths", {}), shared])  # only those used: no deprecated operation, no Sunset
    components["headers"] = {name: dict(HEADERS[name]) for name in sorted(HEADERS) if name in used}
    return result


def _header_refs(node: Any) -> set[str]:
    prefix = "#/components/headers/"
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix(prefix)} if str(node.get("$ref", "")).startswith(prefix) else set()
        return found.union(*(_header_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_header_refs(value) for value in node))
    return set()


USER_SCHEMES = ("bearerAuth", "cookieAuth")  # a person's token or session; agentToken opens /runtime-agent/ only


def add_named_types(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the named scalar types fields refer to (``OrgRef``)."""
    result.setdefault("components", {}).setdefault("schemas", {})["OrgRef"] = dict(ORG_REF_SCHEMA)
    result["components"]["schemas"] = dict(sorted(result["components"]["schemas"].items()))
    return result


def document_security(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the schema's top-level ``security`` (a bearer token or the browser
    session, the API's default), and ``security: []`` on the operations that need no credentials: those open to
    anonymous callers only (sign-up, token, password reset), and those where credentials are optional (accepting an
    invitation: as a new user, or signed in). OpenAPI would say "optional" as ``[{…}, {}]``, but generated clients
    read any non-empty list as "authentication required" (openapi-python-client then demands an
    AuthenticatedClient a new user cannot have): the description says it instead."""
    schemes = result.get("components", {}).get("securitySchemes", {})
    result["security"] = [{name: []} for name in USER_SCHEMES if name in schemes]
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            security = operation.setdefault("security", [])
            if {} in security:
                named = [name for requirement in security for name in requirement]
                operation["security"] = []
                if named:
                    note = f"Credentials are optional here: when sent ({', '.join(named)}), they are used."
                    operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
    return result
