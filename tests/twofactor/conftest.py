from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache(db: Any):
    """The fence cache and the throttles' counters start empty in every test."""
    cache.clear()
    yield
    cache.clear()
