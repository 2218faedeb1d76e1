"""The ID token verifier (identity.oidc.verify_id_token) with hand-made tokens: every property it checks refuses a
token that lacks it — alg none and HS256 above all, whatever the IdP claims to support."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from identity import oidc

ISSUER = "https://idp.example.com"
CLIENT = "canopy"
NONCE = "n-0123456789"


@pytest.fixture
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)


@pytest.fixture
def published(key: RSAKey) -> dict[str, Any]:
    """The IdP's JWKS document, as its jwks_uri serves it (tests swap keys in it)."""
    return {"keys": [key.as_dict(private=False)]}


@pytest.fixture
def fetched() -> list[str]:
    return []


@pytest.fixture
def provider(published: dict[str, Any], fetched: list[str], monkeypatch: Any) -> oidc.Provider:
    def get_json(url: str, what: str, headers: Any = None) -> Any:
        fetched.append(what)
        assert url == f"{ISSUER}/jwks"
        return published

    monkeypatch.setattr(oidc, "_get_json", get_json)
    monkeypatch.setattr(oidc, "_cache_get", lambda key: None)
    return oidc.Provider(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/auth",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks",
        userinfo_endpoint=None,
        # An IdP announcing HS256 and none too: they are still never accepted.
        algorithms=frozenset({"RS256", "HS256", "none"}) & oidc.ASYMMETRIC,
        auth_methods=frozenset({"client_secret_basic"}),
        iss_parameter=False,
    )


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {"iss": ISSUER, "aud": CLIENT, "sub": "s1", "nonce": NONCE, "iat": now, "exp": now + 300}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def signed(key: Any, alg: str = "RS256", kid: str | None = "k1", **changes: Any) -> str:
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    return jwt.encode(header, claims(**changes), key, algorithms=[alg])


def verify(provider: oidc.Provider, token: str, **kwargs: Any) -> dict[str, Any]:
    return oidc.verify_id_token(token, provider=provider, client_id=CLIENT, nonce=NONCE, **kwargs)


def refused(provider: oidc.Provider, token: str) -> str:
    with pytest.raises(oidc.SignInFailed) as failure:
        verify(provider, token)
    return failure.value.reason


def test_a_good_token_verifies(provider, key):
    assert verify(provider, signed(key))["sub"] == "s1"


def b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(provider):
    unsigned = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims())}."
    assert "algorithm 'none'" in refused(provider, unsigned)


def test_hs256_signed_with_the_client_secret_or_the_public_key_is_refused(provider, key):
    secret = OctKey.import_key("the-client-secret-which-is-long-enough")
    assert "algorithm 'HS256'" in refused(provider, signed(secret, alg="HS256"))
    # The classic confusion: the RSA public key's bytes used as an HMAC secret (made by hand: joserfc refuses to).
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1'})}.{b64(claims())}"
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert "algorithm 'HS256'" in refused(provider, confused)


def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(provider):
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    assert "signature" in refused(provider, signed(forger))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://idp.example.com/"}, "iss"),  # exactly, not "the same after normalizing"
        ({"iss": "https://evil.example"}, "iss"),
        ({"aud": "someone-else"}, "aud"),
        ({"aud": ["someone-else", CLIENT]}, "azp"),  # several audiences and no azp naming us
        ({"aud": ["someone-else", CLIENT], "azp": "someone-else"}, "azp"),
        ({"azp": "someone-else"}, "azp"),
        ({"exp": -120}, "expired"),
        ({"exp": None}, "exp missing"),
        ({"iat": None}, "iat missing"),
        ({"iat": +600}, "future"),
        ({"nbf": +600}, "not yet valid"),
        ({"nonce": "another"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"sub": ""}, "sub"),
    ],
)
def test_each_claim_check_refuses(provider, key, changes, reason):
    # Times are offsets from now, taken when the test runs (not when it was collected).
    now = int(time.time())
    changes = {k: now + v if k in ("exp", "iat", "nbf") and v is not None else v for k, v in changes.items()}
    assert reason in refused(provider, signed(key, **changes))


def test_within_the_leeway_and_with_azp_naming_us_it_verifies(provider, key):
    now = int(time.time())
    token = signed(key, exp=now - 30, iat=now + 30, nbf=now + 30, aud=["other", CLIENT], azp=CLIENT)
    assert verify(provider, token)["azp"] == CLIENT


def test_a_rotated_key_is_fetched_once_and_an_unknown_kid_is_refused_after_that(provider, key, published, fetched):
    verify(provider, signed(key))
    fetched.clear()
    new = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig"}, private=True)
    published["keys"] = [new.as_dict(private=False), key.as_dict(private=False)]
    assert verify(provider, signed(new, kid="k2"))["sub"] == "s1"
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k9"}, private=True)
    fetched.clear()
    assert "no published key" in refused(provider, signed(stranger, kid="k9"))
    assert fetched == ["jwks", "jwks"]  # the cached look-up, then one refetch: no loop


def test_an_encryption_key_in_the_jwks_is_never_used(provider, key, published):
    public = key.as_dict(private=False)
    published["keys"] = [public | {"use": "enc"}]
    assert "no published key" in refused(provider, signed(key))


def test_discovery_must_name_the_configured_issuer_exactly(monkeypatch):
    monkeypatch.setattr(oidc, "_cache_get", lambda key: None)
    document = {
        "issuer": "https://idp.example.com/",
        "authorization_endpoint": "https://idp.example.com/auth",
        "token_endpoint": "https://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
    }
    monkeypatch.setattr(oidc, "_get_json", lambda url, what, headers=None: document)
    with pytest.raises(oidc.SignInFailed, match="issuer does not match"):
        oidc.discover(ISSUER)
    document["issuer"] = ISSUER
    document["id_token_signing_alg_values_supported"] = ["HS256", "none"]
    with pytest.raises(oidc.SignInFailed, match="does not accept"):
        oidc.discover(ISSUER)
    document["id_token_signing_alg_values_supported"] = ["HS256", "RS256"]
    assert oidc.discover(ISSUER).algorithms == {"RS256"}


def test_discovery_refuses_endpoints_without_tls_unless_the_platform_allows_private_idps(monkeypatch, settings):
    monkeypatch.setattr(oidc, "_cache_get", lambda key: None)
    document = {
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.example.com/auth",
        "token_endpoint": "http://idp.example.com/token",  # the client secret would travel in clear
        "jwks_uri": "https://idp.example.com/jwks",
    }
    monkeypatch.setattr(oidc, "_get_json", lambda url, what, headers=None: document)
    settings.SSO_ALLOW_PRIVATE_NETWORK = False
    with pytest.raises(oidc.SignInFailed, match="incomplete"):
        oidc.discover(ISSUER)
    with pytest.raises(oidc.SignInFailed, match="must use https"):
        oidc.discover("http://idp.example.com")
    settings.SSO_ALLOW_PRIVATE_NETWORK = True
    assert oidc.discover(ISSUER).token_endpoint == "http://idp.example.com/token"
