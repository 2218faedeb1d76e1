"""Signing in through a tenant's IdP (identity.signin); included from identity/urls.py. The log-in page itself is
routed in access/urls.py (``login``)."""

from django.urls import path

from identity import signin

urlpatterns = [
    path("login/sso/", signin.sso_start, name="sso-start"),
    path("login/sso/callback/", signin.sso_callback, name="sso-callback"),
    path("login/sso/test/", signin.sso_test, name="sso-test"),
    path("login/recovery/", signin.login_recovery, name="login-recovery"),
]
