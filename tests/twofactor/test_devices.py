"""Self-service second factors through the API: enrolling shows the secret once, a first code confirms and makes
ten single-use backup codes (stored hashed), a TOTP code never works twice, failures are throttled, and removing a
second factor or minting new backup codes takes a current code, so a stolen session cannot do either."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from access.models import AuditEvent
from tests.factories import UserFactory, add_to_tenant
from tests.twofactor.helpers import code_of, enrolled
from twofactor import services
from twofactor.models import SealedTOTPDevice


def test_enrolling_answers_the_secret_once_and_the_list_never_shows_it(world, api_as):
    client = api_as(world.member)
    answer = client.post("/api/v1/me/otp-devices", {"name": "phone"}, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Canopy%3Abob?")
    assert "issuer=Canopy" in body["otpauth_uri"] and f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg") and body["confirmed"] is False
    assert answer["Cache-Control"] == "no-store"
    listed = client.get("/api/v1/me/otp-devices").json()
    assert listed["count"] == 1
    assert set(listed["results"][0]) == {"id", "name", "confirmed", "created_at", "last_used_at"}
    assert client.get(f"/api/v1/me/otp-devices/{body['id']}").json()["confirmed"] is False


def test_a_first_code_confirms_and_makes_ten_backup_codes_stored_hashed(world, api_as):
    client = api_as(world.member)
    created = client.post("/api/v1/me/otp-devices", {}, format="json").json()
    device = SealedTOTPDevice.objects.get(canopy_seed__public_id=created["id"])
    answer = client.post(f"/api/v1/me/otp-devices/{device.public_id}/confirm", {"code": code_of(device)}, format="json")
    assert answer.status_code == 200, answer.content
    codes = answer.json()["backup_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10 and answer.json()["confirmed"] is True
    stored = set(StaticToken.objects.filter(device__user=world.member).values_list("token", flat=True))
    assert len(stored) == 10 and stored.isdisjoint(codes)  # hashes, not the codes
    assert services.has_device(world.member)
    # A second device confirms without new backup codes.
    second = client.post("/api/v1/me/otp-devices", {"name": "tablet"}, format="json").json()
    device2 = SealedTOTPDevice.objects.get(canopy_seed__public_id=second["id"])
    again = client.post(
        f"/api/v1/me/otp-devices/{device2.public_id}/confirm", {"code": code_of(device2)}, format="json"
    )
    assert again.status_code == 200 and again.json()["backup_codes"] == []
    assert StaticToken.objects.filter(device__user=world.member).count() == 10


def test_a_wrong_code_does_not_confirm_and_a_confirmed_device_is_not_confirmed_twice(world, api_as):
    client = api_as(world.member)
    created = client.post("/api/v1/me/otp-devices", {}, format="json").json()
    device = SealedTOTPDevice.objects.get(canopy_seed__public_id=created["id"])
    wrong = str((int(code_of(device)) + 1) % 1_000_000).zfill(6)
    answer = client.post(f"/api/v1/me/otp-devices/{device.public_id}/confirm", {"code": wrong}, format="json")
    assert answer.status_code == 400 and "code" in answer.json()
    device.refresh_from_db()
    assert not device.confirmed and not StaticDevice.objects.filter(user=world.member).exists()
    assert client.post(f"/api/v1/me/otp-devices/{device.public_id}/confirm", {}, format="json").status_code == 400
    device.throttle_reset()
    assert (
        client.post(
            f"/api/v1/me/otp-devices/{device.public_id}/confirm", {"code": code_of(device)}, format="json"
        ).status_code
        == 200
    )
    answer = client.post(f"/api/v1/me/otp-devices/{device.public_id}/confirm", {"code": code_of(device)}, format="json")
    assert answer.status_code == 409 and answer.json()["code"] == "confirmed"


def test_starting_over_drops_the_pending_enrollment(world, api_as):
    client = api_as(world.member)
    first = client.post("/api/v1/me/otp-devices", {}, format="json").json()
    client.post("/api/v1/me/otp-devices", {}, format="json")
    assert not TOTPDevice.objects.filter(canopy_seed__public_id=first["id"]).exists()
    assert TOTPDevice.objects.filter(user=world.member).count() == 1


def test_a_totp_code_is_never_accepted_twice(world):
    device, _ = enrolled(world.member)
    code = code_of(device)
    assert services.check_code(world.member, code).how == "totp"
    assert not services.check_code(world.member, code).ok
    device.refresh_from_db()
    assert device.last_t >= 0
    # Nor an older one still within the tolerance window.
    assert not services.check_code(world.member, code_of(device, time.time() - device.step)).ok


def test_a_backup_code_works_once(world):
    _, codes = enrolled(world.member)
    assert services.check_code(world.member, codes[0].upper()).how == "backup"  # typed in capitals: same code
    assert not services.check_code(world.member, codes[0]).ok
    assert services.backup_codes_left(world.member) == 9
    used = AuditEvent.objects.filter(action="2fa.backup_used", tenant=world.acme)
    assert used.count() == 1 and used.get().changes == {"left": 9}


def test_failures_are_throttled_per_device_even_for_the_right_code(world):
    device, _ = enrolled(world.member)
    right = code_of(device)
    wrong = str((int(right) + 1) % 1_000_000).zfill(6)
    assert not services.check_code(world.member, wrong).ok
    result = services.check_code(world.member, code_of(device))
    assert result.throttled and not result.ok
    for _ in range(3):  # the back-off doubles: 1, 2, 4 s … (each throttled attempt is refused without trying)
        assert services.check_code(world.member, code_of(device)).throttled
    later = timezone.now() + timedelta(seconds=2)
    with mock.patch("django_otp.models.timezone.now", return_value=later):
        assert services.check_code(world.member, code_of(device)).how == "totp"
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_backup_code_guesses_are_throttled_too(world):
    _, codes = enrolled(world.member)
    assert not services.check_code(world.member, "aaaa-bbbb-cccc-dddd").ok
    assert services.check_code(world.member, codes[1]).throttled
    assert services.backup_codes_left(world.member) == 10


def test_removing_a_confirmed_device_takes_a_current_code(world, api_as):
    device, codes = enrolled(world.member)
    client = api_as(world.member)
    answer = client.delete(f"/api/v1/me/otp-devices/{device.public_id}", {}, format="json")
    assert answer.status_code == 400 and "code" in answer.json()
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    answer = client.delete(f"/api/v1/me/otp-devices/{device.public_id}", {"code": codes[0]}, format="json")
    assert answer.status_code == 204
    assert not TOTPDevice.objects.filter(user=world.member).exists()
    assert not StaticDevice.objects.filter(user=world.member).exists()  # the last one: backup codes go too
    assert AuditEvent.objects.filter(action="2fa.device_removed", tenant=world.acme).count() == 1


def test_a_pending_enrollment_is_removed_without_a_code(world, api_as):
    client = api_as(world.member)
    created = client.post("/api/v1/me/otp-devices", {}, format="json").json()
    assert client.delete(f"/api/v1/me/otp-devices/{created['id']}").status_code == 204


def test_a_stolen_session_cannot_switch_the_second_factor_off_or_mint_backup_codes(world, api_as):
    device, codes = enrolled(world.member)
    thief = api_as(world.member)  # the victim's token, without the phone
    for body in ({}, {"code": "123456"}, {"code": "not-a-code"}):
        thief.delete(f"/api/v1/me/otp-devices/{device.public_id}", body, format="json")
        device.throttle_reset()
        thief.post("/api/v1/me/otp-devices/backup-codes", body, format="json")
    # The victim's second factor is intact, and so are their backup codes.
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()
    assert services.backup_codes_left(world.member) == 10
    StaticDevice.objects.filter(user=world.member).update(throttling_failure_count=0)  # the thief's misses wait out
    assert services.check_code(world.member, codes[2]).how == "backup"


def test_new_backup_codes_replace_the_old_ones(world, api_as):
    device, old = enrolled(world.member)
    client = api_as(world.member)
    answer = client.post("/api/v1/me/otp-devices/backup-codes", {"code": code_of(device)}, format="json")
    assert answer.status_code == 201, answer.content
    new = answer.json()["backup_codes"]
    assert len(new) == 10
    assert not services.check_code(world.member, old[0]).ok
    StaticDevice.objects.filter(user=world.member).update(throttling_failure_count=0)  # the old code's miss
    assert services.check_code(world.member, new[0]).how == "backup"


def test_backup_codes_need_a_device_first(world, api_as):
    answer = api_as(world.member).post("/api/v1/me/otp-devices/backup-codes", {"code": "123456"}, format="json")
    assert answer.status_code == 409 and answer.json()["code"] == "no_device"


def test_other_peoples_devices_are_404(world, api_as):
    device, _ = enrolled(world.member)
    mallory = api_as(world.tenant_admin)  # the victim's tenant administrator
    for path in (f"/api/v1/me/otp-devices/{device.public_id}", "/api/v1/me/otp-devices/nonsense"):
        assert mallory.get(path).status_code == 404
    assert (
        mallory.delete(f"/api/v1/me/otp-devices/{device.public_id}", {"code": "123456"}, format="json").status_code
        == 404
    )
    assert (
        mallory.post(f"/api/v1/me/otp-devices/{device.public_id}/confirm", {"code": "1"}, format="json").status_code
        == 404
    )
    assert mallory.get("/api/v1/me/otp-devices").json()["count"] == 0
    assert api_as(world.member).get(f"/api/v1/me/otp-devices/{device.pk}").status_code == 404  # only UUIDs name them
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_anonymous_callers_are_401(api):
    assert api.get("/api/v1/me/otp-devices").status_code == 401
    assert api.post("/api/v1/me/otp-devices", {}, format="json").status_code == 401


def test_every_change_is_audited_in_each_tenant_of_the_account(world):
    both = world.member
    add_to_tenant(both, world.globex)
    enrolled(both)
    for tenant in (world.acme, world.globex):
        actions = set(AuditEvent.objects.filter(tenant=tenant, actor=both).values_list("action", flat=True))
        assert {"2fa.device_added", "2fa.device_confirmed", "2fa.backup_codes"} <= actions
    loner = UserFactory(username="loner")  # no tenant: nothing to record, nothing fails
    enrolled(loner)


def test_the_device_list_has_a_query_budget(world, api_as, django_assert_max_num_queries):
    for name in ("a", "b", "c"):
        services.enroll(actor=world.member, name=name)
        TOTPDevice.objects.filter(user=world.member, confirmed=False).update(confirmed=True)
    client = api_as(world.member)
    with django_assert_max_num_queries(4):
        assert client.get("/api/v1/me/otp-devices").json()["count"] == 3


def test_the_totp_key_is_sealed_at_rest_and_the_plain_model_fails_closed(world):
    device, _ = enrolled(world.member)
    from twofactor.models import TOTPSeed

    real = device.bin_key.hex()
    row = TOTPDevice.objects.get(pk=device.pk)
    assert row.key != real  # the column holds a decoy
    assert real not in TOTPSeed.objects.get(device=device).ciphertext
    assert not row.verify_token(code_of(device))  # django-otp's own model checks the decoy: refused
    row.throttle_reset()
    StaticDevice.objects.filter(user=world.member).update(throttling_failure_count=0)
    assert services.check_code(world.member, code_of(device)).how == "totp"


def test_rotating_the_encryption_keys_reseals_the_seeds(world, settings):
    import io

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    device, _ = enrolled(world.member)
    before = device.bin_key
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "1 TOTP seeds" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # the old key gone: the seed still reads
    assert SealedTOTPDevice.objects.select_related("canopy_seed").get(pk=device.pk).bin_key == before
