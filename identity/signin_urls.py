"""The sign-in routes of single sign-on (discovery, the IdP's callback, the test sign-in, break-glass): the
sign-in flow's (identity/signin.py) to fill. URL names other pages link to: ``sso-start``, ``sso-callback``,
``sso-test``."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
