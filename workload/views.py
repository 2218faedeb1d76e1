"""Canopy's issuer documents, public and unauthenticated: OpenID Connect discovery and the JWKS.

They live at the site's root (``/.well-known/…``, RFC 8414 and OpenID Connect Discovery 1.0 place them there), not
under /api/v1/, and are plain Django views, so the OpenAPI schema (which documents /api/v1/) leaves them out on
purpose: their formats are the standards', not Canopy's. README "Workload identity" documents them.

No session, no user: nothing here reads either (the middleware's lazy user is never touched), so a request costs
no query at all for discovery and at most one per cache period for the JWKS (workload.keys caches the keys).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from workload import keys

CLAIMS = [
    "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "tenant_id", "org_id", "org_ancestor_ids", "project_id",
    "task_id", "run_id", "runtime_id", "runtime_kind",
]  # fmt: skip


def _public(response: JsonResponse, max_age: int) -> JsonResponse:
    response["Cache-Control"] = f"public, max-age={max_age}"
    response["Access-Control-Allow-Origin"] = "*"  # public keys: any verifier, browsers included, may read them
    return response


def discovery_document() -> dict[str, object]:
    issuer = settings.WORKLOAD_IDENTITY_ISSUER
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",  # the issuer may carry a path: discovery is under it too
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": keys.signing_algs(),
        "scopes_supported": ["openid"],
        "claims_supported": CLAIMS,
    }


@require_safe
def openid_configuration(request: HttpRequest) -> JsonResponse:
    """The issuer's metadata. ``issuer`` is WORKLOAD_IDENTITY_ISSUER (default SITE_URL): the address verifiers
    configure, which must equal the tokens' ``iss``, never derived from this request's Host."""
    return _public(JsonResponse(discovery_document()), keys.JWKS_MAX_AGE_S)


@require_safe
def jwks(request: HttpRequest) -> JsonResponse:
    """The public keys: next (not signing yet), active, and retired ones whose tokens may still be valid."""
    return _public(JsonResponse(keys.jwks()), keys.JWKS_MAX_AGE_S)
