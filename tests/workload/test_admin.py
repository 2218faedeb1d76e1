"""The admin pages of workload identity: signing keys for superusers only (read-only, never the private key, a rotate
button that POSTs with CSRF), issued tokens scoped to the tenant administrator's tenants."""

from __future__ import annotations

import html
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from tests.runtimes.queue_helpers import make_runtime
from tests.workload.helpers import claimed_run, identity_task
from workload.models import IssuedToken, SigningKey

KEYS = "/admin/workload/signingkey/"
TOKENS = "/admin/workload/issuedtoken/"


def test_a_superuser_sees_the_keys_without_their_private_part(world, signing_keys, as_user):
    client = as_user(world.superuser)
    listing = client.get(KEYS)
    assert listing.status_code == 200
    page = listing.content.decode()
    assert signing_keys.active.kid in page and signing_keys.next.kid in page and "Rotate the keys now" in page
    stored = SigningKey.objects.get(kid=signing_keys.active.kid)
    detail = html.unescape(client.get(f"{KEYS}{stored.pk}/change/").content.decode())
    assert stored.kid in detail and '"kty": "RSA"' in detail and '"n": ' in detail
    assert stored.private_key not in detail and "private_key" not in detail and '"d": ' not in detail
    assert client.get(f"{KEYS}add/").status_code == 403
    assert client.post(f"{KEYS}{stored.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SigningKey.objects.filter(pk=stored.pk).exists()


def test_a_tenant_administrator_does_not_see_the_keys(world, signing_keys, as_user):
    client = as_user(world.tenant_admin)
    assert client.get(KEYS).status_code == 403
    assert client.get(f"{KEYS}{SigningKey.objects.first().pk}/change/").status_code in (403, 302, 404)
    assert "signingkey" not in client.get("/admin/").content.decode().lower()
    response = client.post(f"{KEYS}rotate/")
    assert response.status_code == 403
    assert set(SigningKey.objects.values_list("kid", flat=True)) == {signing_keys.active.kid, signing_keys.next.kid}


def test_a_superuser_rotates_from_the_list(world, signing_keys, as_user):
    SigningKey.objects.filter(kid=signing_keys.next.kid).update(created_at=timezone.now() - timedelta(hours=1))
    client = as_user(world.superuser)
    assert client.get(f"{KEYS}rotate/").status_code == 405  # a GET changes nothing
    response = client.post(f"{KEYS}rotate/", follow=True)
    assert response.status_code == 200 and "Rotated:" in response.content.decode()
    assert SigningKey.objects.get(state="active").kid == signing_keys.next.kid
    assert SigningKey.objects.get(kid=signing_keys.active.kid).state == "retired"
    # Too soon again: refused with the reason, nothing changed.
    again = client.post(f"{KEYS}rotate/", follow=True)
    assert "less than 360 s ago" in again.content.decode()
    assert SigningKey.objects.get(state="active").kid == signing_keys.next.kid


def test_the_rotate_button_needs_the_csrf_token(world, signing_keys):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.superuser)
    SigningKey.objects.filter(kid=signing_keys.next.kid).update(created_at=timezone.now() - timedelta(hours=1))
    assert client.post(f"{KEYS}rotate/").status_code == 403
    assert SigningKey.objects.get(state="active").kid == signing_keys.active.kid


def test_issued_tokens_are_scoped_to_the_tenant_administrators_tenants(world, signing_keys, as_user):
    ours = claimed_run(make_runtime(world.root, "edge"), identity_task(world.website))
    ours.ask()
    theirs = claimed_run(make_runtime(world.globex_root, "g"), identity_task(world.globex_project, audience="globex"))
    theirs.ask(audience="globex")
    own, other = IssuedToken.objects.get(run=ours.run), IssuedToken.objects.get(run=theirs.run)
    client = as_user(world.tenant_admin)
    page = client.get(TOKENS).content.decode()
    assert str(own.jti) in page and str(other.jti) not in page
    assert client.get(f"{TOKENS}{other.jti}/change/").status_code in (302, 404)
    assert client.get(f"{TOKENS}{own.jti}/change/").status_code == 200
    everything = as_user(world.superuser).get(TOKENS).content.decode()
    assert str(own.jti) in everything and str(other.jti) in everything
