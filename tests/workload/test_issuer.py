"""Canopy as an issuer: discovery and the JWKS (public, cached, public keys only), forgeries both verifiers refuse
(``alg: none``, HS256 keyed by the public key, a tampered payload, a key not in the JWKS), and key rotation: the next
key is published before it signs, a token signed before a rotation still verifies after it, a retired key leaves the
JWKS once its last token has expired, and the command and the admin rotate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey

from config.actors import SYSTEM
from config.errors import Conflict, Forbidden
from tests.workload.helpers import (
    ALG_REFUSED,
    AUDIENCE,
    ISSUER,
    REFUSED,
    SIGNATURE_REFUSED,
    VERIFIERS,
    b64json,
    claimed_run,
    fetch_jwks,
    forge_hs256,
    parts,
)
from workload import checks, keys
from workload.models import SigningKey


def publishable(rotation: keys.Rotation) -> None:
    """Backdate the next key past the JWKS max-age, as time would: a rotation may then promote it."""
    SigningKey.objects.filter(kid=rotation.next.kid).update(created_at=timezone.now() - timedelta(hours=1))


def kids(jwks: dict[str, Any]) -> list[str]:
    return [key["kid"] for key in jwks["keys"]]


# -- discovery and JWKS --------------------------------------------------------------------------------------------


def test_discovery_names_the_configured_issuer_and_its_jwks(
    db, signing_keys, client, settings, django_assert_max_num_queries
):
    settings.ALLOWED_HOSTS = ["testserver", "other.example"]
    with django_assert_max_num_queries(1):
        response = client.get("/.well-known/openid-configuration", HTTP_HOST="other.example")
    assert response.status_code == 200
    assert response["Cache-Control"] == f"public, max-age={keys.JWKS_MAX_AGE_S}"
    assert json.loads(response.content) == {
        "issuer": ISSUER,  # the setting, not the request's Host
        "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "tenant_id", "org_id", "org_ancestor_ids",
            "project_id", "task_id", "run_id", "runtime_id", "runtime_kind",
        ],
    }  # fmt: skip


def test_the_issuer_defaults_to_the_site_url_without_its_trailing_slash():
    env = {**os.environ, "SITE_URL": "https://console.example/", "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("WORKLOAD_IDENTITY_ISSUER", None)
    code = "import django; django.setup(); from django.conf import settings; print(settings.WORKLOAD_IDENTITY_ISSUER)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "https://console.example", done.stderr


def test_the_jwks_is_public_holds_no_private_part_and_costs_at_most_one_query(
    db, signing_keys, client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(1):
        response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response["Cache-Control"] == f"public, max-age={keys.JWKS_MAX_AGE_S}"
    assert response["Access-Control-Allow-Origin"] == "*"
    jwks = json.loads(response.content)
    assert kids(jwks) == [signing_keys.active.kid, signing_keys.next.kid]
    for key in jwks["keys"]:
        assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}  # no d, p, q, dp, dq, qi
        assert key["alg"] == "RS256" and key["use"] == "sig"
        assert RSAKey.import_key(key).thumbprint() == key["kid"]  # RFC 7638
    with django_assert_max_num_queries(0):  # cached
        assert client.get("/.well-known/jwks.json").status_code == 200
    assert client.post("/.well-known/jwks.json").status_code == 405


def test_the_private_key_is_stored_encrypted(db, signing_keys):
    stored = SigningKey.objects.get(kid=signing_keys.active.kid)
    assert "PRIVATE KEY" not in stored.private_key and stored.private_key.startswith("gAAAA")  # a Fernet token
    private = keys.private_key(stored)
    assert private.thumbprint() == stored.kid and private.as_dict(private=True)["d"]


def test_es256_keys_are_made_when_configured_and_sign_es256_tokens(world, edge, task, settings):
    settings.WORKLOAD_IDENTITY_ALG = "ES256"
    rotation = keys.rotate(actor=SYSTEM)
    jwks = fetch_jwks()
    assert {(k["kty"], k["crv"], k["alg"]) for k in jwks["keys"]} == {("EC", "P-256", "ES256")}
    assert rotation.active.alg == "ES256" and "d" not in rotation.active.public_jwk
    discovery = json.loads(Client().get("/.well-known/openid-configuration").content)
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]
    token = claimed_run(edge, task).ask().json()["token"]
    assert parts(token)[0] == {"alg": "ES256", "kid": rotation.active.kid, "typ": "JWT"}
    for verify in VERIFIERS:
        assert verify(token, jwks, alg="ES256")["claims"]["aud"] == AUDIENCE
        with pytest.raises(ALG_REFUSED):  # a verifier pinned to RS256 refuses it
            verify(token, jwks)


# -- forgeries -----------------------------------------------------------------------------------------------------


@pytest.fixture
def genuine(world, signing_keys, edge, task) -> str:
    return claimed_run(edge, task).ask().json()["token"]


@pytest.mark.parametrize("verify", VERIFIERS)
def test_a_genuine_token_verifies(genuine, verify):
    assert verify(genuine, fetch_jwks())["claims"]["aud"] == AUDIENCE


@pytest.mark.parametrize("verify", VERIFIERS)
def test_alg_none_is_refused(genuine, verify):
    header, claims, _ = parts(genuine)
    forged = f"{b64json({**header, 'alg': 'none'})}.{b64json({**claims, 'org_id': 'another-org'})}."
    # Well-formed: a reader that skips verification takes its claims …
    assert pyjwt.decode(forged, options={"verify_signature": False})["org_id"] == "another-org"
    # … the verifiers pinned to RS256 refuse it, whatever the case of "none".
    for alg in ("none", "None", "NONE"):
        forged = f"{b64json({**header, 'alg': alg})}.{b64json({**claims, 'org_id': 'another-org'})}."
        with pytest.raises(ALG_REFUSED):
            verify(forged, fetch_jwks())


@pytest.mark.parametrize("verify", VERIFIERS)
def test_hs256_keyed_by_the_public_key_is_refused(genuine, verify):
    """The algorithm confusion attack: the public key (as PEM, as DER, or as the JWK's JSON) used as an HMAC secret,
    against a verifier that would take the header's word for the algorithm."""
    header, claims, _ = parts(genuine)
    jwks = fetch_jwks()
    public = RSAKey.import_key(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    pem = public.as_pem(private=False)
    der = public.raw_value.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for secret in (pem, der, json.dumps(public.as_dict()).encode()):
        forged = forge_hs256({**header, "alg": "HS256"}, {**claims, "tenant_id": "victim"}, secret)
        assert parts(forged)[0]["alg"] == "HS256" and parts(forged)[1]["tenant_id"] == "victim"
        with pytest.raises(ALG_REFUSED):
            verify(forged, jwks)


@pytest.mark.parametrize("verify", VERIFIERS)
def test_a_tampered_payload_is_refused(genuine, verify):
    _, claims, signature = parts(genuine)
    for change in ({"org_id": "another"}, {"exp": claims["exp"] + 3600}, {"org_ancestor_ids": []}):
        tampered = f"{genuine.split('.')[0]}.{b64json({**claims, **change})}.{signature}"
        with pytest.raises(SIGNATURE_REFUSED):
            verify(tampered, fetch_jwks())


@pytest.mark.parametrize("verify", VERIFIERS)
def test_a_token_signed_by_a_key_outside_the_jwks_is_refused(genuine, verify):
    header, claims, _ = parts(genuine)
    stranger = RSAKey.generate_key(2048)
    forged = jose_jwt.encode(header, claims, stranger, algorithms=["RS256"])  # the genuine kid, another key
    with pytest.raises(SIGNATURE_REFUSED):
        verify(forged, fetch_jwks())


@pytest.mark.parametrize("verify", VERIFIERS)
def test_a_token_for_another_audience_is_refused(genuine, verify):
    with pytest.raises(REFUSED) as refused:
        verify(genuine, fetch_jwks(), audience="https://vault.example")
    assert "aud" in str(refused.value).lower()


# -- rotation ------------------------------------------------------------------------------------------------------


def test_the_first_rotation_makes_an_active_and_a_next_key(db):
    rotation = keys.rotate(actor=SYSTEM)
    states = dict(SigningKey.objects.values_list("kid", "state"))
    assert states == {rotation.active.kid: "active", rotation.next.kid: "next"}
    assert rotation.retired is None and rotation.deleted == []
    assert rotation.active.activated_at is not None


def test_a_rotation_round_trip(world, signing_keys, edge, task, settings):
    first, upcoming = signing_keys.active.kid, signing_keys.next.kid
    claimed = claimed_run(edge, task)
    # The next key is published before it signs anything.
    assert upcoming in kids(fetch_jwks())
    before = claimed.ask().json()["token"]
    assert parts(before)[0]["kid"] == first
    cached_by_a_verifier = fetch_jwks()

    publishable(signing_keys)
    rotation = keys.rotate(actor=SYSTEM)
    assert (rotation.active.kid, rotation.retired.kid) == (upcoming, first)
    after = claimed.ask().json()["token"]
    assert parts(after)[0]["kid"] == upcoming
    for verify in VERIFIERS:
        # A verifier that cached the JWKS before the rotation knows the new key already …
        assert verify(after, cached_by_a_verifier)["claims"]["run_id"] == str(claimed.run.pk)
        # … and one that fetches it now still finds the retired key of the older token.
        assert verify(before, fetch_jwks())["header"]["kid"] == first
    assert kids(fetch_jwks()) == [first, upcoming, rotation.next.kid]

    # Once the retired key's last token has expired (plus the leeway), it leaves the JWKS …
    retired = SigningKey.objects.get(kid=first)
    assert retired.state == "retired"
    assert retired.signed_until == datetime.fromtimestamp(parts(before)[1]["exp"], tz=UTC)
    past = timezone.now() - timedelta(seconds=settings.WORKLOAD_IDENTITY_KEY_LEEWAY_S + 1)
    SigningKey.objects.filter(kid=first).update(signed_until=past)
    keys.forget_published()
    assert first not in kids(fetch_jwks())
    for verify in VERIFIERS:
        with pytest.raises(REFUSED):  # its key is gone from the JWKS
            verify(before, fetch_jwks())
    # … and the next rotation deletes it.
    publishable(rotation)
    assert keys.rotate(actor=SYSTEM).deleted == [first]
    assert not SigningKey.objects.filter(kid=first).exists()


def test_a_retired_key_stays_while_its_tokens_may_be_valid(world, signing_keys, edge, task, settings):
    claimed_run(edge, task).ask()
    publishable(signing_keys)
    keys.rotate(actor=SYSTEM)
    # Still inside signed_until + leeway: kept, published, and not deleted by another rotation.
    SigningKey.objects.filter(kid=signing_keys.active.kid).update(signed_until=timezone.now() - timedelta(seconds=10))
    keys.forget_published()
    assert signing_keys.active.kid in kids(fetch_jwks())
    SigningKey.objects.filter(state="next").update(created_at=timezone.now() - timedelta(hours=1))
    assert signing_keys.active.kid not in keys.rotate(actor=SYSTEM).deleted


def test_a_rotation_right_after_the_next_key_appeared_is_refused_unless_forced(db, signing_keys):
    with pytest.raises(Conflict) as refused:
        keys.rotate(actor=SYSTEM)
    assert refused.value.code == "rotation_too_soon"
    assert SigningKey.objects.get(state="active").kid == signing_keys.active.kid  # nothing changed
    assert keys.rotate(actor=SYSTEM, force=True).active.kid == signing_keys.next.kid


def test_exactly_one_active_key_is_a_database_constraint(db, signing_keys):
    with pytest.raises(IntegrityError), transaction.atomic():
        SigningKey.objects.filter(kid=signing_keys.next.kid).update(state="active")


def test_a_token_signed_just_before_a_rotation_keeps_its_key_published(world, signing_keys, edge, task):
    """The key's signed_until is pushed before it signs: a rotation that retires it right after keeps it."""
    claimed = claimed_run(edge, task)
    token = claimed.ask().json()["token"]
    publishable(signing_keys)
    keys.rotate(actor=SYSTEM)
    SigningKey.objects.filter(state="next").update(created_at=timezone.now() - timedelta(hours=1))
    keys.rotate(actor=SYSTEM)  # a second rotation: the first key is retired longer, still within its token's life
    assert parts(token)[0]["kid"] in kids(fetch_jwks())
    for verify in VERIFIERS:
        verify(token, fetch_jwks())


def test_only_a_superuser_or_the_platform_rotates(world):
    for user in (world.tenant_admin, world.member):
        with pytest.raises(Forbidden):
            keys.rotate(actor=user)
    assert not SigningKey.objects.exists()
    assert keys.rotate(actor=world.superuser).active.state == "active"


def test_the_command_rotates_and_prints_the_status(db):
    out = StringIO()
    call_command("rotate_workload_keys", "--status", stdout=out)
    assert "No keys yet" in out.getvalue() and not SigningKey.objects.exists()
    out = StringIO()
    call_command("rotate_workload_keys", stdout=out)
    active, upcoming = SigningKey.objects.get(state="active"), SigningKey.objects.get(state="next")
    assert f"Rotated: {active.kid} signs, {upcoming.kid} is next." in out.getvalue()
    assert f"active   RS256 {active.kid}" in out.getvalue() and f"next     RS256 {upcoming.kid}" in out.getvalue()
    with pytest.raises(CommandError, match="less than 360 s ago"):
        call_command("rotate_workload_keys", stdout=StringIO())
    out = StringIO()
    call_command("rotate_workload_keys", "--force", "--alg", "ES256", stdout=out)
    assert SigningKey.objects.get(state="active").kid == upcoming.kid
    assert SigningKey.objects.get(state="next").alg == "ES256"
    assert f"retired  RS256 {active.kid}" in out.getvalue()


def test_the_rotation_is_logged_on_the_application_log(db, caplog):
    with caplog.at_level("INFO", logger="canopy.workload"):
        rotation = keys.rotate(actor=SYSTEM)
    (record,) = [r for r in caplog.records if r.name == "canopy.workload"]
    assert record.getMessage().startswith("workload.key_rotated by system")
    assert rotation.active.kid in record.getMessage() and "PRIVATE" not in record.getMessage()


def test_rotating_the_encryption_keys_re_encrypts_the_signing_keys(world, edge, task, settings):
    old_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    rotation = keys.rotate(actor=SYSTEM)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "2 signing keys" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone: the keys still sign
    keys._private.cache_clear()  # no key decrypted before the rotation helps
    token = claimed_run(edge, task).ask().json()["token"]
    assert parts(token)[0]["kid"] == rotation.active.kid
    for verify in VERIFIERS:
        verify(token, fetch_jwks())


@pytest.mark.parametrize(
    ("issuer", "warned"),
    [("https://canopy.example", False), ("https://canopy.example/sub", False), ("http://canopy.example", True),
     ("https://canopy.example?x=1", True), ("canopy.example", True)],
)  # fmt: skip
def test_the_deploy_check_warns_of_an_issuer_clouds_will_not_trust(settings, issuer, warned):
    settings.WORKLOAD_IDENTITY_ISSUER = issuer
    found = [message.id for message in checks.https_issuer()]
    assert found == (["workload.W001"] if warned else [])
