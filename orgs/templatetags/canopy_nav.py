"""``{% org_tabs as tabs %}``: the org's sections for the page being drawn (orgs/_tabs.html), from the ``org``, the
``caps`` and the ``tab`` a page passes (``{% include "orgs/_tabs.html" with tab="members" %}``)."""

from __future__ import annotations

from typing import Any

from django import template

from orgs import navigation

register = template.Library()


@register.simple_tag(takes_context=True)
def org_tabs(context: Any) -> list[navigation.Tab]:
    org = context.get("org")
    if org is None:
        return []
    return navigation.org_tabs(org, context.get("caps") or (), context.get("tab") or "")


@register.simple_tag
def tab_row(tabs: list[navigation.Tab]) -> navigation.TabRow:
    """``{% tab_row tabs as split %}``: the tabs of a wide screen's row (``split.row``) and those under "More"."""
    return navigation.tab_row(tabs)
