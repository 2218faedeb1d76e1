"""``{% load vocabulary %}``: capabilities in words in templates (access/vocabulary.py)."""

from __future__ import annotations

from django import template

from access import vocabulary

register = template.Library()


@register.filter
def cap_label(key: str) -> str:
    """``{{ "credential.manage"|cap_label }}`` → "Manage credentials"."""
    return vocabulary.label(str(key))


@register.filter
def cap_description(key: str) -> str:
    return vocabulary.describe(str(key)).description


@register.filter
def cap_words(keys: object) -> list[vocabulary.Capability]:
    """A list of keys (a role's capabilities) in words, in the vocabulary's order."""
    return vocabulary.in_order(keys if isinstance(keys, list | tuple | set | frozenset) else [])
