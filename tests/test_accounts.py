"""The account's own pages and endpoints: e-mail, password, verification, reset. Each has an allow case, a deny
case and bad input answered with a clear error and nothing changed."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from access.services import accounts
from tests.factories import PASSWORD, UserFactory

NEW = "Another-good-passw0rd"


def stored(user):
    return get_user_model().objects.get(pk=user.pk)


# -- console ---------------------------------------------------------------------------------------------------------


def test_the_account_page_needs_a_sign_in(client):
    response = client.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_account_page_shows_the_address_and_whether_it_is_verified(world, as_user, django_assert_max_num_queries):
    client = as_user(world.member)
    with django_assert_max_num_queries(6):
        html = (response := client.get("/account/")).content.decode()
        assert response.status_code == 200 and "bob@example.com" in html
    assert "bob@example.com" in html and "verified" in html and "Change your password" in html


def test_changing_the_address_needs_the_password_and_unverifies_it(
    world, as_user, mailoutbox, django_capture_on_commit_callbacks
):
    client = as_user(world.member)
    refused = client.post(
        "/account/", {"action": "email", "email-email": "bob@new.example", "email-current_password": "nope"}
    )
    assert refused.status_code == 400 and "not correct" in refused.content.decode()
    assert stored(world.member).email == "bob@example.com" and stored(world.member).email_verified

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            "/account/", {"action": "email", "email-email": "bob@new.example", "email-current_password": PASSWORD}
        )
    assert done.status_code == 302
    bob = stored(world.member)
    assert bob.email == "bob@new.example" and not bob.email_verified
    assert mailoutbox[-1].to == ["bob@new.example"] and "/account/verify-email/#" in mailoutbox[-1].body


def test_an_address_another_account_verified_is_refused(world, as_user):
    response = as_user(world.member).post(
        "/account/", {"action": "email", "email-email": "ALICE@example.com", "email-current_password": PASSWORD}
    )
    assert response.status_code == 400 and stored(world.member).email == "bob@example.com"


def test_a_new_password_must_pass_the_validators_and_match(world, as_user):
    client = as_user(world.member)
    for new, again in (("123", "123"), (NEW, NEW + "x")):
        response = client.post(
            "/account/",
            {"action": "password", "password-current_password": PASSWORD, "password-new_password": new,
             "password-new_password_again": again},
        )  # fmt: skip
        assert response.status_code == 400
    assert stored(world.member).check_password(PASSWORD)


def test_verifying_through_the_console_link(world, client):
    bob = stored(world.member)
    type(bob).objects.filter(pk=bob.pk).update(email_verified_at=None)
    assert "data-link-code" in client.get("/account/verify-email/").content.decode()
    bad = client.post("/account/verify-email/", {"code": "forged"})
    assert bad.status_code == 400 and not stored(bob).email_verified
    good = client.post("/account/verify-email/", {"code": accounts.email_verification_code(bob)})
    assert good.status_code == 302 and stored(bob).email_verified


def test_a_verification_code_for_an_old_address_does_not_verify_the_new_one(world):
    bob = stored(world.member)
    old_code = accounts.email_verification_code(bob)
    type(bob).objects.filter(pk=bob.pk).update(email="bob@new.example", email_verified_at=None)
    with pytest.raises(Exception, match="no longer has"):
        accounts.verify_email(code=old_code)
    assert not stored(bob).email_verified


def test_resetting_a_password_through_the_console(world, client, mailoutbox):
    assert client.get("/login/").content.decode().count("/account/password-reset/") == 1
    response = client.post("/account/password-reset/", {"email": "bob@example.com"})
    assert response.status_code == 302 and len(mailoutbox) == 1
    code = mailoutbox[0].body.split("paste this code:\n", 1)[1].split("\n", 1)[0]
    page = client.get("/account/password-reset/confirm/").content.decode()
    assert "data-link-code" in page
    mismatch = client.post(
        "/account/password-reset/confirm/", {"code": code, "password": NEW, "password_again": "other"}
    )
    assert mismatch.status_code == 400 and stored(world.member).check_password(PASSWORD)
    done = client.post("/account/password-reset/confirm/", {"code": code, "password": NEW, "password_again": NEW})
    assert done.status_code == 302 and stored(world.member).check_password(NEW)
    reused = client.post("/account/password-reset/confirm/", {"code": code, "password": PASSWORD,
                                                                "password_again": PASSWORD})  # fmt: skip
    assert reused.status_code == 400 and stored(world.member).check_password(NEW)


def test_a_reset_request_answers_the_same_for_an_unknown_address(db, client, mailoutbox):
    response = client.post("/account/password-reset/", {"email": "nobody@nowhere.example"})
    assert response.status_code == 302 and mailoutbox == []
    assert client.post("/account/password-reset/", {"email": "not an address"}).status_code == 400


# -- API -------------------------------------------------------------------------------------------------------------


def test_me_shows_whether_the_address_is_verified(world, api_as):
    body = api_as(world.member).get("/api/v1/me").json()
    assert body["email"] == "bob@example.com" and body["email_verified"] is True


def test_me_endpoints_need_authentication(db):
    api = APIClient()
    assert api.get("/api/v1/me").status_code == 401
    assert (
        api.patch("/api/v1/me", {"email": "x@example.com", "current_password": "x"}, format="json").status_code == 401
    )
    assert api.post("/api/v1/me/password", {}, format="json").status_code == 401
    assert api.post("/api/v1/me/verify-email").status_code == 401


def test_changing_the_address_through_the_api(world, api_as, mailoutbox, django_capture_on_commit_callbacks):
    client = api_as(world.member)
    bad = client.patch("/api/v1/me", {"email": "bob@new.example", "current_password": "nope"}, format="json")
    assert bad.status_code == 400 and "current_password" in bad.json()
    with django_capture_on_commit_callbacks(execute=True):
        good = client.patch("/api/v1/me", {"email": "bob@new.example", "current_password": PASSWORD}, format="json")
    assert good.status_code == 200 and good.json()["email_verified"] is False
    assert mailoutbox[-1].to == ["bob@new.example"]
    code = mailoutbox[-1].body.split("paste this code:\n", 1)[1].split("\n", 1)[0]
    assert client.post("/api/v1/me/verify-email").status_code == 202
    verified = APIClient().post("/api/v1/auth/verify-email", {"token": code}, format="json")
    assert verified.status_code == 200 and stored(world.member).email_verified


def test_a_bad_verification_code_is_a_field_error(db):
    response = APIClient().post("/api/v1/auth/verify-email", {"token": "nope"}, format="json")
    assert response.status_code == 400 and "token" in response.json()


def test_a_bad_reset_code_is_a_field_error_and_changes_nothing(world):
    for token in ("nope", "abc.def", "Zm9v.bar-baz"):
        response = APIClient().post(
            "/api/v1/auth/password-reset/confirm", {"token": token, "password": NEW}, format="json"
        )
        assert response.status_code == 400 and "token" in response.json()
    assert stored(world.member).check_password(PASSWORD)


def test_the_new_endpoints_are_in_the_schema(world, api_as):
    paths = api_as(world.member).get("/api/v1/schema/?format=json").json()["paths"]
    for path in ("/api/v1/me", "/api/v1/me/password", "/api/v1/me/verify-email", "/api/v1/auth/verify-email",
                 "/api/v1/auth/password-reset", "/api/v1/auth/password-reset/confirm",
                 "/api/v1/invitations/accept"):  # fmt: skip
        assert path in paths
    assert "patch" in paths["/api/v1/me"]


def test_an_inactive_account_gets_no_reset_link(world, mailoutbox):
    bob = stored(world.member)
    bob.is_active = False
    bob.save()
    assert APIClient().post("/api/v1/auth/password-reset", {"email": bob.email}, format="json").status_code == 202
    assert mailoutbox == []


def test_an_unverified_account_cannot_take_over_a_verified_address_by_verifying(world):
    twin = UserFactory(username="twin", email="alice@example.com", email_verified_at=None)
    with pytest.raises(Exception, match="already"):
        accounts.verify_email(code=accounts.email_verification_code(twin))
    assert not stored(twin).email_verified
