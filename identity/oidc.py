"""The OpenID Connect relying party: one per tenant, configured by data (identity.models.TenantSSO).

Authlib gives the protocol pieces (PKCE's S256 challenge, the authorization URL); joserfc checks signatures. Every
property a sign-in rests on is checked here, explicitly, rather than trusted to a library default:

- the discovery document's ``issuer`` is the configured issuer, character for character (OIDC Discovery §4.3);
- ``state`` (CSRF), ``nonce`` (token replay) and the PKCE verifier (code interception) are fresh per attempt, kept
  server-side in the session and used once (identity.signin);
- the ID token's signature verifies against the IdP's published keys, with an asymmetric algorithm the IdP
  announces (never ``none``, never HS*: an HMAC "signed" with the client secret proves nothing about the IdP); an
  unknown ``kid`` refetches the JWKS once, which is how an IdP's key rotation reaches us before the cache expires;
- ``iss`` is the issuer, ``aud`` holds our client id (and ``azp`` names us when there are several audiences),
  ``exp``/``iat``/``nbf`` hold with a minute of leeway, ``nonce`` is the attempt's;
- the authorization response's ``iss`` (RFC 9207), when sent, names the issuer (mix-up between two IdPs).

Every network call has a timeout and goes through the SSRF guard of http steps (runtimes.agent.netguard): an issuer
URL is typed by a tenant administrator, so it may not point Canopy at its own private network unless the platform
allows it (``SSO_ALLOW_PRIVATE_NETWORK``). Every failure is a :class:`SignInFailed` with a message a person can act
on; the details go to the security log, never to the page.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from identity.models import TenantSSO
from resources import crypto
from runtimes.agent import netguard

log = logging.getLogger("canopy.security")

TIMEOUT = 5.0  # seconds per request to the IdP
CACHE_TTL = 300  # seconds: discovery and JWKS; an unknown kid refetches the JWKS at once
LEEWAY = 60  # seconds of clock skew allowed on exp / iat / nbf
# Signature algorithms an ID token may use: asymmetric only. "none" and HS* are refused whatever the IdP announces.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)


class SignInFailed(Exception):
    """A sign-in through the IdP did not succeed. ``message`` is for the person signing in; ``reason`` for the log."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.message = message
        self.reason = reason or message


@dataclass(frozen=True)
class Provider:
    """What the IdP's discovery document says, checked."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: frozenset[str]
    auth_methods: frozenset[str]
    iss_parameter: bool  # RFC 9207: the authorization response carries ``iss``


@dataclass(frozen=True)
class Identity:
    """The person the IdP asserted, from a verified ID token (and userinfo for what the token left out)."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    groups: list[str] | None  # None: the IdP sent no groups claim at all (not the same as no groups)
    claims: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt's secrets, kept in the session until its callback (single use)."""

    state: str
    nonce: str
    verifier: str


def redirect_uri() -> str:
    """The callback URL to register at the IdP (SITE_URL, never the request's Host header)."""
    return f"{settings.SITE_URL.rstrip('/')}{reverse('sso-callback')}"


def client_secret(sso: TenantSSO) -> str:
    """The client secret, decrypted for the token request only."""
    value = crypto.decrypt(sso.client_secret_ciphertext)
    if isinstance(value, dict):
        value = value.get("client_secret")
    return str(value or "")


# -- network --------------------------------------------------------------------------------------------------------


def _client() -> httpx.Client:
    allow_private = bool(getattr(settings, "SSO_ALLOW_PRIVATE_NETWORK", False))
    return netguard.guarded_client(netguard.GuardedBackend(allow_private=allow_private), timeout=TIMEOUT)


def _get_json(url: str, what: str, headers: dict[str, str] | None = None) -> Any:
    try:
        with _client() as client:
            response = client.get(url, headers={"Accept": "application/json", **(headers or {})})
    except (httpx.HTTPError, netguard.BlockedAddress, OSError) as error:
        raise SignInFailed(
            "The identity provider cannot be reached right now. Try again in a moment.", f"{what}: {error!r}"
        ) from None
    if response.status_code != 200:
        raise SignInFailed(
            "The identity provider answered with an error. Try again, or ask your administrator.",
            f"{what}: HTTP {response.status_code}",
        )
    try:
        return response.json()
    except ValueError:
        raise SignInFailed("The identity provider sent an answer Canopy cannot read.", f"{what}: not JSON") from None


def _cache_key(kind: str, url: str) -> str:
    return f"canopy:oidc:{kind}:{hashlib.sha256(url.encode()).hexdigest()}"


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception:  # a cache outage costs a fetch, never a sign-in
        return None


def _cache_set(key: str, value: Any) -> None:
    try:
        cache.set(key, value, CACHE_TTL)
    except Exception:
        log.warning("oidc: cache unavailable, %s not cached", key)


# -- discovery and keys ---------------------------------------------------------------------------------------------


def _schemes() -> tuple[str, ...]:
    """TLS only, unless the platform allows IdPs on its own network (development, tests): the token request carries
    the client secret, and the keys decide every signature."""
    return ("https://", "http://") if getattr(settings, "SSO_ALLOW_PRIVATE_NETWORK", False) else ("https://",)


def _endpoint(document: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.startswith(_schemes()):
        raise SignInFailed(
            "The identity provider's configuration is incomplete. Ask your administrator.", f"discovery: bad {name}"
        )
    return value


def discover(issuer: str) -> Provider:
    """The IdP's discovery document (cached per issuer for a few minutes), checked against the configured issuer."""
    if not issuer.startswith(_schemes()):
        raise SignInFailed(
            "The identity provider's address must use https. Ask your administrator.", f"issuer {issuer!r}"
        )
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    key = _cache_key("discovery", url)
    document = _cache_get(key)
    if not isinstance(document, dict):
        document = _get_json(url, "discovery")
        if not isinstance(document, dict):
            raise SignInFailed("The identity provider sent an answer Canopy cannot read.", "discovery: not an object")
        _cache_set(key, document)
    if document.get("issuer") != issuer:
        # OIDC Discovery §4.3: the document must name exactly the issuer it was fetched for.
        raise SignInFailed(
            "The identity provider's issuer does not match the configured one. Ask your administrator.",
            f"discovery: issuer {document.get('issuer')!r} != {issuer!r}",
        )
    announced = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = frozenset(str(a) for a in announced if isinstance(a, str)) & ASYMMETRIC
    if not algorithms:
        raise SignInFailed(
            "The identity provider signs ID tokens in a way Canopy does not accept. Ask your administrator.",
            f"discovery: no asymmetric algorithm in {announced!r}",
        )
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return Provider(
        issuer=issuer,
        authorization_endpoint=str(_endpoint(document, "authorization_endpoint")),
        token_endpoint=str(_endpoint(document, "token_endpoint")),
        jwks_uri=str(_endpoint(document, "jwks_uri")),
        userinfo_endpoint=_endpoint(document, "userinfo_endpoint", required=False),
        algorithms=algorithms,
        auth_methods=frozenset(str(m) for m in methods),
        iss_parameter=bool(document.get("authorization_response_iss_parameter_supported")),
    )


def _jwks(provider: Provider, *, refresh: bool = False) -> KeySet:
    key = _cache_key("jwks", provider.jwks_uri)
    document = None if refresh else _cache_get(key)
    if not isinstance(document, dict):
        document = _get_json(provider.jwks_uri, "jwks")
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise SignInFailed("The identity provider's keys cannot be read.", "jwks: no keys")
        _cache_set(key, document)
    usable = [k for k in document["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig" and "d" not in k]
    if not usable:
        return KeySet([])
    try:
        return KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError) as error:
        raise SignInFailed("The identity provider's keys cannot be read.", f"jwks: {error!r}") from None


def _signing_key(keys: KeySet, kid: str | None, alg: str) -> Any:
    family = {"R": "RSA", "P": "RSA", "E": "EC"}.get(alg[0], "OKP")
    candidates = [k for k in keys.keys if k.key_type == family]
    if kid is not None:
        candidates = [k for k in candidates if k.kid == kid]
    return candidates[0] if len(candidates) == 1 else None


# -- the flow -------------------------------------------------------------------------------------------------------


def new_attempt() -> Attempt:
    return Attempt(state=generate_token(32), nonce=generate_token(32), verifier=secrets.token_urlsafe(64))


def authorization_url(sso: TenantSSO, provider: Provider, attempt: Attempt, *, login_hint: str = "") -> str:
    """Where the browser goes to sign in: the code flow with state, nonce and PKCE S256."""
    params = {
        "response_type": "code",
        "client_id": sso.client_id,
        "redirect_uri": redirect_uri(),
        "scope": _scopes(sso),
        "state": attempt.state,
        "nonce": attempt.nonce,
        "code_challenge": create_s256_code_challenge(attempt.verifier),
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if "?" in provider.authorization_endpoint else "?"
    return f"{provider.authorization_endpoint}{separator}{urlencode(params)}"


def _scopes(sso: TenantSSO) -> str:
    scopes = [s for s in sso.scopes.split() if s]
    return " ".join(["openid", *[s for s in scopes if s != "openid"]])


def exchange_code(sso: TenantSSO, provider: Provider, *, code: str, verifier: str) -> dict[str, Any]:
    """The token response for ``code`` (sent once: the IdP refuses a code it has seen, and so do we by state).

    The client authenticates with its secret in HTTP Basic when the IdP supports it, else in the form. An IdP that
    registered the client for the other method answers ``invalid_client`` before it looks at the code, so that one
    answer is retried once with the other method (Okta, for one, holds each client to a single method)."""
    secret = client_secret(sso)
    methods = ["client_secret_basic", "client_secret_post"]
    if "client_secret_basic" not in provider.auth_methods:
        methods.reverse()
    for method in methods:
        response = _token_request(sso, provider, code=code, verifier=verifier, secret=secret, method=method)
        try:
            body = response.json()
        except ValueError:
            body = {}
        said = body.get("error") if isinstance(body, dict) else None
        if said == "invalid_client" and method == methods[0] and methods[1] in provider.auth_methods:
            continue
        if response.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
            raise SignInFailed(
                "The identity provider did not accept this sign-in (it may have expired or been used already). "
                "Start again.",
                f"token: HTTP {response.status_code} {said!r} ({method})",
            )
        return body
    raise AssertionError("unreachable")


def _token_request(
    sso: TenantSSO, provider: Provider, *, code: str, verifier: str, secret: str, method: str
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(), "code_verifier": verifier}
    basic = method == "client_secret_basic"
    if not basic:
        data |= {"client_id": sso.client_id, "client_secret": secret}
    try:
        with _client() as client:
            return client.post(
                provider.token_endpoint,
                data=data,
                auth=httpx.BasicAuth(sso.client_id, secret) if basic else httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
    except (httpx.HTTPError, netguard.BlockedAddress, OSError) as error:
        raise SignInFailed(
            "The identity provider cannot be reached right now. Try again in a moment.", f"token: {error!r}"
        ) from None


def verify_id_token(
    token: str, *, provider: Provider, client_id: str, nonce: str, now: float | None = None
) -> dict[str, Any]:
    """The ID token's claims once every check passed (see the module docstring); SignInFailed otherwise."""
    refused = "The identity provider's answer could not be verified. Try again, or ask your administrator."
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError) as error:
        raise SignInFailed(refused, f"id_token: unreadable {error!r}") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in provider.algorithms:
        raise SignInFailed(refused, f"id_token: algorithm {alg!r} not accepted")
    kid = header.get("kid")
    key = _signing_key(_jwks(provider), kid, alg)
    if key is None:  # a key we have not seen: the IdP may have rotated; ask it once
        key = _signing_key(_jwks(provider, refresh=True), kid, alg)
    if key is None:
        raise SignInFailed(refused, f"id_token: no published key for kid {kid!r}")
    try:
        claims = dict(jwt.decode(token, key, algorithms=[alg]).claims)
    except (JoseError, ValueError, TypeError) as error:
        raise SignInFailed(refused, f"id_token: signature {error!r}") from None
    _check_claims(claims, provider=provider, client_id=client_id, nonce=nonce, now=time.time() if now is None else now)
    return claims


def _check_claims(claims: dict[str, Any], *, provider: Provider, client_id: str, nonce: str, now: float) -> None:
    def refuse(reason: str) -> None:
        raise SignInFailed(
            "The identity provider's answer could not be verified. Try again, or ask your administrator.",
            f"id_token: {reason}",
        )

    if claims.get("iss") != provider.issuer:
        refuse(f"iss {claims.get('iss')!r}")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if client_id not in audiences:
        refuse(f"aud {audience!r}")
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        refuse(f"azp {claims.get('azp')!r}")
    for name in ("exp", "iat"):
        if not isinstance(claims.get(name), int | float) or isinstance(claims.get(name), bool):
            refuse(f"{name} missing")
    if claims["exp"] + LEEWAY < now:
        refuse("expired")
    if claims["iat"] - LEEWAY > now:
        refuse("issued in the future")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int | float) or nbf - LEEWAY > now):
        refuse("not yet valid")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        refuse("nonce")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        refuse("sub missing")


def userinfo(provider: Provider, access_token: str, subject: str) -> dict[str, Any]:
    """The userinfo claims (OIDC Core §5.3.2: its ``sub`` must be the ID token's, or nothing is taken from it)."""
    if provider.userinfo_endpoint is None or not access_token:
        return {}
    claims = _get_json(provider.userinfo_endpoint, "userinfo", {"Authorization": f"Bearer {access_token}"})
    if not isinstance(claims, dict) or claims.get("sub") != subject:
        raise SignInFailed(
            "The identity provider's answer could not be verified. Try again, or ask your administrator.",
            "userinfo: sub differs from the ID token's",
        )
    return claims


def complete(sso: TenantSSO, attempt: Attempt, *, code: str, iss: str | None) -> Identity:
    """Finish an attempt whose state already matched: exchange the code, verify the ID token, read userinfo for the
    claims the token left out (e-mail, groups), and say who signed in."""
    provider = discover(sso.issuer)
    if iss is not None and iss != provider.issuer:
        raise SignInFailed("This answer came from another identity provider. Start again.", f"iss param {iss!r}")
    if iss is None and provider.iss_parameter:
        raise SignInFailed("The identity provider's answer is incomplete. Start again.", "iss param missing")
    tokens = exchange_code(sso, provider, code=code, verifier=attempt.verifier)
    claims = verify_id_token(tokens["id_token"], provider=provider, client_id=sso.client_id, nonce=attempt.nonce)
    groups_claim = sso.groups_claim.strip()
    wanted = {"email", "email_verified"} | ({groups_claim} if groups_claim else set())
    if not wanted <= claims.keys():
        extra = userinfo(provider, str(tokens.get("access_token") or ""), claims["sub"])
        claims = {**{k: v for k, v in extra.items() if k in wanted}, **claims}
    email = claims.get("email")
    groups: list[str] | None = None
    if groups_claim and groups_claim in claims:
        raw = claims[groups_claim]
        raw = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        groups = [str(g) for g in raw if isinstance(g, str | int)]
    return Identity(
        issuer=provider.issuer,
        subject=str(claims["sub"]),
        email=email.strip() if isinstance(email, str) else "",
        email_verified=claims.get("email_verified") is True,
        groups=groups,
        claims={k: v for k, v in claims.items() if k not in {"nonce", "at_hash", "c_hash"}},
    )
