"""Attacks, written as the attacker's requests followed by the victim's state read back.

Each module holds one kind of attack; every finding of a review lands here as a test first. README.md's
"Security" section points at these tests next to the promises they hold."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from access.services import issue_token
from access.services.grants import grant_role
from config.actors import SYSTEM
from tests.factories import PASSWORD, UserFactory, add_to_tenant


def fresh(user: Any) -> Any:
    """The user as stored now (no cached rights, no stale fields)."""
    return get_user_model().objects.get(pk=user.pk)


def token_client(user: Any) -> tuple[APIClient, str]:
    client = APIClient()
    _, raw = issue_token(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, raw


def password_works(user: Any, password: str = PASSWORD) -> bool:
    response = APIClient().post("/api/v1/auth/token", {"username": user.username, "password": password}, format="json")
    return response.status_code == 201


@pytest.fixture
def gina_in_acme(world: Any) -> Any:
    """Gina administers Globex and, having accepted an invitation, is also an Integrator in Acme's Marketing."""
    add_to_tenant(world.other_admin, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="integrator", user=world.other_admin)
    return world.other_admin


@pytest.fixture
def root_in_acme(world: Any) -> Any:
    """The superuser, a plain member of Acme."""
    add_to_tenant(world.superuser, world.acme)
    return world.superuser


@pytest.fixture
def marketing_admin(world: Any) -> Any:
    user = UserFactory(username="mallory")
    add_to_tenant(user, world.acme)
    grant_role(actor=SYSTEM, target=world.marketing, role="admin", user=user)
    return user
