"""Second factors in the admin: read-only, superusers only, never the secret; a superuser may reset a user's devices
(audited). A tenant administrator can neither see nor remove a member's second factor: that would be half of an
account takeover (reset the victim's 2FA, then the password through another path)."""

from __future__ import annotations

from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from access.models import AuditEvent
from tests.twofactor.helpers import enrolled

TOTP_LIST = "/admin/otp_totp/totpdevice/"
STATIC_LIST = "/admin/otp_static/staticdevice/"


def test_a_superuser_sees_devices_read_only_and_never_the_key(world, client):
    device, _ = enrolled(world.member)
    client.force_login(world.superuser)
    listed = client.get(TOTP_LIST)
    assert listed.status_code == 200 and "phone" in listed.content.decode()
    page = client.get(f"{TOTP_LIST}{device.pk}/change/")
    assert page.status_code == 200
    assert device.key not in page.content.decode() and 'name="key"' not in page.content.decode()
    assert client.get(f"{TOTP_LIST}add/").status_code == 403
    client.post(f"{TOTP_LIST}{device.pk}/change/", {"name": "renamed", "confirmed": ""})
    device.refresh_from_db()
    assert device.name == "phone" and device.confirmed
    assert client.get(STATIC_LIST).status_code == 200


def test_a_tenant_administrator_cannot_see_or_remove_a_members_second_factor(world, client):
    device, _ = enrolled(world.member)  # bob, in Acme; alice administers Acme
    client.force_login(world.tenant_admin)
    assert client.get("/admin/").status_code == 200
    assert "otp_totp" not in client.get("/admin/").content.decode()
    for url in (TOTP_LIST, f"{TOTP_LIST}{device.pk}/change/", f"{TOTP_LIST}{device.pk}/delete/", STATIC_LIST):
        assert client.get(url).status_code in (403, 302)
    # The attack: delete the device, and run the reset action, as the victim's tenant administrator.
    client.post(f"{TOTP_LIST}{device.pk}/delete/", {"post": "yes"})
    client.post(TOTP_LIST, {"action": "reset_users_devices", "_selected_action": [device.pk]})
    client.post(TOTP_LIST, {"action": "delete_selected", "_selected_action": [device.pk], "post": "yes"})
    # The victim's second factor is intact.
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()
    assert StaticDevice.objects.filter(user=world.member).exists()
    assert not AuditEvent.objects.filter(action="2fa.device_removed").exists()


def test_a_superuser_resets_a_users_second_factor_audited(world, client):
    device, _ = enrolled(world.member)
    client.force_login(world.superuser)
    answer = client.post(TOTP_LIST, {"action": "reset_users_devices", "_selected_action": [device.pk]})
    assert answer.status_code == 302
    assert not TOTPDevice.objects.filter(user=world.member).exists()
    assert not StaticDevice.objects.filter(user=world.member).exists()
    event = AuditEvent.objects.get(action="2fa.device_removed", tenant=world.acme)
    assert event.actor == world.superuser and event.changes == {"reset": True, "devices": 2}


def test_the_reset_service_refuses_anyone_but_a_superuser(world):
    import pytest

    from config.errors import Forbidden
    from twofactor import services

    enrolled(world.member)
    with pytest.raises(Forbidden):
        services.reset_devices(actor=world.tenant_admin, user=world.member)
    assert services.has_device(world.member)
