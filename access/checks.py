"""System check, deploy only: throttles need a cache every worker shares."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

# Backends whose data lives in one process (locmem), nowhere (dummy) or on one machine's disk (file).
PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
}


@register(Tags.caches, deploy=True)
def shared_cache(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if settings.DEBUG or backend not in PER_PROCESS_CACHES:
        return []
    return [
        Error(
            f"The default cache ({backend.rsplit('.', 1)[-1]}) is not shared between worker processes: the "
            "throttles of token issuance and sign-up would count per worker, multiplying their limits by the "
            "number of workers (DummyCache: not count at all), and anything cached would differ between workers.",
            hint="Set CACHE_URL to a Redis every worker reaches, e.g. CACHE_URL=redis://127.0.0.1:6379/1 "
            "(see README.md, Deploying).",
            id="canopy.E002",
        )
    ]
