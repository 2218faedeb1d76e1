"""The console's two-factor pages: the account's devices (enroll with a QR code and the key, confirm, backup codes
shown once, remove with a code), and the page a 2FA-fenced org sends a user to (which org, since when; verify now
or set up, then back where they were going). Everything works with plain form posts (no JavaScript)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django_otp.plugins.otp_totp.models import TOTPDevice

from access import fences
from tests.factories import PASSWORD
from tests.twofactor.helpers import age, code_of, enrolled, require_2fa
from twofactor import services
from twofactor.models import SealedTOTPDevice

HOUR = timedelta(hours=1)


def _context(client: Any) -> fences.AuthContext:
    return fences.AuthContext.from_session(client.session.get(fences.SESSION_KEY))


def test_the_account_page_links_to_two_factor_authentication(world, client):
    client.force_login(world.member)
    assert b'href="/account/two-factor/"' in client.get("/account/").content


def test_the_devices_page_needs_a_sign_in(world, client):
    answer = client.get("/account/two-factor/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_enrolling_in_the_console_shows_the_qr_code_and_key_once_then_confirms(world, client):
    client.force_login(world.member)
    assert client.get("/account/two-factor/").status_code == 200
    page = client.post("/account/two-factor/", {"action": "enroll", "name": "phone"})
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    device = SealedTOTPDevice.objects.get(user=world.member)
    html = page.content.decode()
    assert "<svg" in html and services.Enrollment(device, "", "").device == device
    key = html.split('data-testid="manual-key">')[1].split("<")[0]
    assert key and key in services.otpauth_uri(device)
    assert key not in client.get("/account/two-factor/").content.decode()  # never again
    wrong = client.post("/account/two-factor/", {"action": "confirm", "device": device.public_id, "code": "12"})
    assert wrong.status_code == 400 and not TOTPDevice.objects.get(pk=device.pk).confirmed
    device.throttle_reset()
    done = client.post(
        "/account/two-factor/", {"action": "confirm", "device": device.public_id, "code": code_of(device)}
    )
    assert done.status_code == 200
    codes = done.content.decode().split('data-testid="backup-codes">')[1]
    assert codes.count("<code>") == 10
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert _context(client).otp_verified  # the first code proved the device: this session is verified


def test_someone_elses_device_cannot_be_confirmed_or_removed_in_the_console(world, client):
    device, _ = enrolled(world.member)
    client.force_login(world.tenant_admin)
    assert (
        client.post(
            "/account/two-factor/", {"action": "remove", "confirmed": "1", "device": device.public_id, "code": "1"}
        ).status_code
        == 404
    )
    assert (
        client.post("/account/two-factor/", {"action": "confirm", "device": device.public_id, "code": "1"}).status_code
        == 404
    )
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()


def test_removing_in_the_console_takes_a_current_code(world, client):
    device, codes = enrolled(world.member)
    client.force_login(world.member)
    refused = client.post(
        "/account/two-factor/", {"action": "remove", "confirmed": "1", "device": device.public_id, "code": ""}
    )
    assert refused.status_code == 400 and TOTPDevice.objects.filter(pk=device.pk).exists()
    done = client.post(
        "/account/two-factor/", {"action": "remove", "confirmed": "1", "device": device.public_id, "code": codes[0]}
    )
    assert done.status_code == 302 and not TOTPDevice.objects.filter(pk=device.pk).exists()


def test_new_backup_codes_in_the_console(world, client):
    device, _ = enrolled(world.member)
    client.force_login(world.member)
    refused = client.post("/account/two-factor/", {"action": "backup", "backup-code": "000000"})
    assert refused.status_code == 400
    assert services.backup_codes_left(world.member) == 10
    device.refresh_from_db()
    device.throttle_reset()
    made = client.post("/account/two-factor/", {"action": "backup", "backup-code": code_of(device)})
    assert made.status_code == 200 and made.content.decode().count("<code>") == 10


# -- the fence's page ----------------------------------------------------------------------------------------------


def test_a_fenced_page_sends_a_user_with_a_device_to_verify_and_back(world, people, client):
    admin = people["admin"]
    age(require_2fa(world.emea), 2 * HOUR)
    device, _ = enrolled(admin)
    client.force_login(admin)  # a session that skipped the code step
    target = f"/o/{world.emea.pk}/"
    answer = client.get(target)
    assert answer.status_code == 302
    page = client.get(answer["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "EMEA" in html and "requires two-factor authentication" in html
    assert 'action="/account/two-factor/verify/"' in html
    done = client.post("/account/two-factor/verify/", {"code": code_of(device), "next": target})
    assert done.status_code == 302 and done["Location"] == target
    assert client.get(target).status_code == 200
    assert client.get(f"/o/{world.marketing.pk}/").status_code == 200


def test_a_fenced_page_sends_a_user_without_a_device_to_set_one_up_and_back(world, people, client):
    admin = people["admin"]
    age(require_2fa(world.emea), HOUR)
    client.force_login(admin)
    target = f"/o/{world.campaigns.pk}/"
    page = client.get(client.get(target)["Location"]).content.decode()
    setup = f"/account/two-factor/?{urlencode({'next': target})}"
    assert setup.replace("&", "&amp;") in page or setup in page
    assert target in client.get(setup).content.decode()  # the enrollment form carries where to go back
    client.post("/account/two-factor/", {"action": "enroll", "name": "phone", "next": target})
    device = SealedTOTPDevice.objects.get(user=admin)
    done = client.post(
        "/account/two-factor/",
        {"action": "confirm", "device": device.public_id, "code": code_of(device), "next": target},
    )
    assert done.status_code == 200 and f'href="{target}"' in done.content.decode()  # backup codes, then back
    assert client.get(target).status_code == 200


def test_the_fence_page_names_nothing_to_someone_whose_roles_do_not_reach_the_org(world, people, client):
    age(require_2fa(world.emea), HOUR)
    client.force_login(world.outsider)
    page = client.get(f"/account/two-factor/required/?{urlencode({'org': world.emea.pk, 'next': '/'})}")
    assert page.status_code == 200 and "EMEA" not in page.content.decode()


def test_a_verified_session_goes_straight_back(world, people, client):
    device, _ = enrolled(people["admin"])
    client.post("/login/", {"username": "admin-m", "password": PASSWORD})
    client.post("/account/two-factor/verify/", {"code": code_of(device)})
    answer = client.get(f"/account/two-factor/required/?{urlencode({'next': '/account/'})}")
    assert answer.status_code == 302 and answer["Location"] == "/account/"


def test_the_required_page_needs_a_sign_in(world, client):
    answer = client.get("/account/two-factor/required/?next=/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_verifying_without_a_device_leads_to_setting_one_up(world, client):
    client.force_login(world.member)
    answer = client.get("/account/two-factor/verify/?next=/account/")
    assert answer.status_code == 302 and answer["Location"] == "/account/two-factor/?next=%2Faccount%2F"


def test_the_devices_page_has_a_query_budget(world, client, django_assert_max_num_queries):
    for name in ("a", "b", "c"):
        services.enroll(actor=world.member, name=name)
        TOTPDevice.objects.filter(user=world.member).update(confirmed=True)
    client.force_login(world.member)
    with django_assert_max_num_queries(8):
        page = client.get("/account/two-factor/")
    assert page.status_code == 200 and page.content.decode().count('name="action" value="remove"') == 3
