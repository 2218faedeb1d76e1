"""The console's pages, enumerated from the URL resolver and filled from the demo world (``manage.py seed_demo``):
shared by the crawler (tests/console/test_crawler.py), which GETs and posts them, and the layout walk
(tests/e2e/test_layout_e2e.py), which opens them in a browser at three widths. A new page is in both without editing
either (a parameter they cannot fill fails loudly)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from orgs.models import Organization, Project
from resources.models import Declaration

SKIPPED_PREFIXES = ("admin/", "api/", ".well-known/")  # the admin and the API have their own tests and fuzzer
OBJECTS_PER_MODEL = 1  # each model's first object (by id): every kind of page, not every page of a kind


# -- the pages: every console URL pattern, filled from the demo world ------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str  # e.g. "o/<uuid:org_id>/p/<uuid:project_id>/"
    params: tuple[str, ...]


def console_routes() -> list[Route]:
    """Every named URL pattern of the console, from the resolver."""
    found: list[Route] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if route.startswith(SKIPPED_PREFIXES):
                continue
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and entry.name:
                found.append(Route(entry.name, route, tuple(entry.pattern.converters)))

    walk(get_resolver().url_patterns, "")
    assert len(found) > 30, "the resolver lists fewer console pages than the console has"
    return found


def models_named(param: str) -> list[type[models.Model]]:
    """The models a ``<x_id>`` parameter names: ``item`` is any declared kind, else the models whose name ends with
    ``x`` (``token`` → AccessToken, ``grant`` → the four grant models)."""
    stem = param.removesuffix("_id")
    if stem == "item":
        return [m for m in apps.get_models() if issubclass(m, Declaration)]
    return [m for m in apps.get_models() if m._meta.model_name.endswith(stem) and m._meta.app_label != "guardian"]


def org_of(obj: Any) -> Organization | None:
    while obj is not None and not isinstance(obj, Organization):
        obj = next(
            (getattr(obj, a) for a in ("org", "project", "task", "content_object", "component") if hasattr(obj, a)),
            None,
        )
    return obj


def sample_orgs() -> list[Organization]:
    """Acme's root, a department with an Admin of its own (maria), and another tenant's root (Globex)."""
    acme = Organization.objects.alive().filter(tenant__name="Acme")
    return [
        acme.get(parent__isnull=True),
        acme.get(name="Marketing"),
        Organization.objects.alive().get(tenant__name="Globex", parent__isnull=True),
    ]


def fill(route: Route) -> Iterator[dict[str, Any]]:
    """The URL arguments to crawl ``route`` with, coherent with each other (a task under its own org)."""
    params = set(route.params)
    if not params:
        yield {}
        return
    others = params - {"org_id", "project_id"}
    if not others:
        if "project_id" in params:
            for project in Project.objects.select_related("org").order_by("name")[:4]:
                yield {"org_id": project.org_id, "project_id": project.pk}
        else:
            for org in sample_orgs():
                yield {"org_id": org.pk}
        return
    assert len(others) == 1, f"{route.pattern}: the crawler fills one object parameter beside org and project"
    param = others.pop()
    named = models_named(param)
    assert named, f"{route.pattern}: teach the crawler which objects <{param}> names"
    for model in named:
        for obj in model._default_manager.order_by("pk")[:OBJECTS_PER_MODEL]:
            kwargs: dict[str, Any] = {param: obj.pk}
            if "org_id" in params:
                org = org_of(obj)
                if org is None:
                    continue
                kwargs["org_id"] = org.pk
            if "project_id" in params:
                project = getattr(obj, "project", None)
                if project is None:
                    continue
                kwargs["project_id"] = project.pk
            yield kwargs


def unknown(route: Route) -> dict[str, Any] | None:
    """Arguments that name nothing: a real org (where there is one) and an id nobody has."""
    if not route.params:
        return None
    kwargs: dict[str, Any] = {}
    for param in route.params:
        kwargs[param] = sample_orgs()[0].pk if param == "org_id" and len(route.params) > 1 else uuid.uuid4()
    return kwargs


def page_urls() -> list[tuple[Route, str]]:
    return [(route, reverse(route.name, kwargs=kwargs)) for route in console_routes() for kwargs in fill(route)]
