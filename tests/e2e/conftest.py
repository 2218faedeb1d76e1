"""Browser tests drive Debian's chromium (/usr/bin/chromium) through Playwright; no browser is downloaded."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import BrowserContext

# Playwright's sync API runs an event loop in the test thread; the Django ORM calls made by the test itself
# (creating data, reading it back) are still synchronous and safe there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def demo(transactional_db: Any) -> None:
    """The demo world of ``make run`` (``manage.py seed_demo``), in the live server's database."""
    call_command("seed_demo", allow_production=True, stdout=io.StringIO())


@pytest.fixture
def sign_in(live_server: Any, context: BrowserContext) -> Callable[[str], None]:
    """Sign the browser context in as ``username`` by planting a session cookie (no log-in form per persona: the
    log-in flow has its own browser test)."""

    def sign(username: str) -> None:
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        context.clear_cookies()
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])

    return sign
