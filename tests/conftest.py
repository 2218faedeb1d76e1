from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from access import fences
from access.services import issue_token
from config.actors import SYSTEM
from tests.factories import World, build_world


def pytest_configure(config: pytest.Config) -> None:
    # Password hashing at production cost would dominate the suite's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tests run without collectstatic: serve static files from the apps, without the production manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Browser tests need a live server and Debian's chromium. Under CI they are required (never skipped);
    # elsewhere they run when chromium is installed.
    in_ci = os.environ.get("CI") == "true"
    has_chromium = os.path.exists(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    for item in items:
        # The marker, not the keyword: a folder named e2e (tests/runtimes/e2e: agents, no browser) is no browser test.
        if item.get_closest_marker("e2e") is not None and not in_ci and not has_chromium:
            item.add_marker(pytest.mark.skip(reason="Debian's chromium is not installed (apt-get install chromium)"))


@pytest.fixture
def world(db: Any) -> World:
    world = build_world()
    # A running server's steady state: each tenant's authentication-rule answers (access/fences.py: one query for all
    # providers on a miss, tests/identity/test_fences.py) are cached, so query budgets measure the requests.
    fences.enforcing([world.acme.pk, world.globex.pk])
    return world


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as(db: Any):
    """api_as(user) -> an APIClient authenticated with a fresh personal access token of ``user``."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        _, raw = issue_token(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def postgres_only(db: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://…")


@pytest.fixture
def people(world: World) -> dict[str, Any]:
    """An Admin, an Integrator and a Guest on Marketing (usernames admin-m, integrator-m, guest-m), and a
    ``newcomer`` in Acme with no role yet."""
    from access.services.grants import grant_role
    from tests.factories import UserFactory, add_to_tenant

    people = {}
    for role in ("admin", "integrator", "guest"):
        user = UserFactory(username=f"{role}-m")
        add_to_tenant(user, world.acme)
        grant_role(actor=SYSTEM, target=world.marketing, role=role, user=user)
        people[role] = user
    newcomer = UserFactory(username="newcomer")
    add_to_tenant(newcomer, world.acme)
    people["newcomer"] = newcomer
    return people


@pytest.fixture
def as_user(client: Any):
    """as_user(user) -> the Django test client, logged in as ``user``."""

    def login(user: Any) -> Any:
        client.force_login(user)
        return client

    return login
