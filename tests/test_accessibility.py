"""Accessibility without a browser (#11 §7): what the HTML itself must get right, checked on every console page so a
run without chromium still catches it (the browser tests run axe-core on the rendered pages:
tests/e2e/test_accessibility_e2e.py).

- Django (5.x) points a field's ``aria-describedby`` at ``<id>_helptext`` and, when it has errors, ``<id>_error``:
  the form templates draw both ids; no ARIA reference or ``<label for>`` names an id missing from the page;
- no id is used twice on a page (two forms on one page keep ids of their own);
- radio and checkbox groups are a fieldset with a legend, not a ``<label for="">`` naming nothing;
- every table sits in its own named scroll region that the keyboard reaches (axe's scrollable-region-focusable:
  a wide table scrolls there, never the page).
"""

from __future__ import annotations

import io
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.template.loader import render_to_string
from django.test import Client

from config.console import EditForm
from resources.forms import ImportForm
from tests.console.pages import page_urls

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
REFERENCES = ("aria-describedby", "aria-labelledby", "aria-controls", "aria-owns", "aria-errormessage")


class Ids(HTMLParser):
    """The ids of a page, and the ids its ARIA attributes, labels and ``form=`` attributes name."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()
        self.references: list[tuple[str, str, str]] = []  # (tag, attribute, id named)
        self.open: list[dict[str, str]] = []  # the attributes of the elements enclosing the current one
        self.bare_tables = 0  # tables not directly in a focusable, named scroll region

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            region = self.open[-1] if self.open else {}
            named = region.get("role") == "region" and region.get("tabindex") == "0" and region.get("aria-label")
            self.bare_tables += not ("table-scroll" in region.get("class", "").split() and named)
        if tag not in VOID:
            self.open.append(a)
        if "id" in a:
            self.ids[a["id"]] += 1
        for attr in REFERENCES:
            for ref in a.get(attr, "").split():
                self.references.append((tag, attr, ref))
        if tag == "label" and "for" in a:
            self.references.append((tag, "for", a["for"]))
        if "form" in a and tag in ("button", "input", "select", "textarea"):
            self.references.append((tag, "form", a["form"]))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self.open:
            self.open.pop()


def problems_in(html: str) -> list[str]:
    parser = Ids()
    parser.feed(html)
    found = [f'id "{i}" is used {n} times' for i, n in parser.ids.items() if n > 1]
    found += [f'<{tag} {attr}="{ref}">: no such id' for tag, attr, ref in parser.references if ref not in parser.ids]
    found += [f"{parser.bare_tables} table(s) outside a named, focusable scroll region"] if parser.bare_tables else []
    return found


class SampleForm(forms.Form):
    name = forms.CharField(help_text="A name people recognise.")
    plain = forms.CharField(required=False)
    colours = forms.MultipleChoiceField(
        choices=[("red", "Red"), ("green", "Green")], widget=forms.CheckboxSelectMultiple, help_text="Pick any."
    )
    size = forms.ChoiceField(choices=[("s", "Small"), ("l", "Large")], widget=forms.RadioSelect)
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)


def test_help_text_and_errors_are_on_the_page_the_fields_point_at() -> None:
    form = SampleForm(data={"plain": "x", "colours": ["blue"]})
    assert not form.is_valid()
    html = render_to_string("_form_fields.html", {"form": form})
    assert problems_in(html) == []
    assert 'aria-describedby="id_name_helptext id_name_error"' in html
    assert 'id="id_name_helptext"' in html and 'id="id_name_error"' in html
    assert 'aria-invalid="true"' in html
    # A field without help text or errors points nowhere, and nothing points at it.
    assert "id_plain_helptext" not in html and "id_plain_error" not in html


def test_choice_groups_are_fieldsets_with_a_legend() -> None:
    html = render_to_string("_form_fields.html", {"form": SampleForm(data={"name": "n"})})
    assert "<legend>Colours</legend>" in html and "<legend>Size</legend>" in html
    assert 'for=""' not in html
    assert 'aria-describedby="id_colours_helptext id_colours_error"' in html  # on the fieldset: Django skips groups
    assert problems_in(html) == []


def test_a_valid_form_renders_no_error_container() -> None:
    html = render_to_string("_form_fields.html", {"form": SampleForm()})
    assert "_error" not in html and problems_in(html) == []


def test_two_forms_on_one_page_keep_ids_of_their_own() -> None:
    """The lookup table page draws its edit form and its CSV import form: both carry a hidden version."""
    assert render_to_string("_form_fields.html", {"form": EditForm()}).count('id="id_version"') == 1
    html = render_to_string("_form_fields.html", {"form": EditForm(initial={"version": 1})}) + render_to_string(
        "_form_fields.html", {"form": ImportForm(initial={"version": 1})}
    )
    assert problems_in(html) == []


@pytest.fixture
def demo(db: Any) -> None:
    call_command("seed_demo", allow_production=True, stdout=io.StringIO())


@pytest.mark.parametrize("persona", ["acme-admin", "maria"])
def test_every_console_page_names_only_ids_it_has(persona, demo) -> None:
    client = Client()
    client.force_login(get_user_model().objects.get(username=persona))
    found: list[str] = []
    pages = 0
    for route, url in page_urls():
        if route.name == "logout":
            continue
        response = client.get(url)
        if "text/html" not in response.get("Content-Type", "") or not response.content:
            continue
        pages += 1
        found += [f"{url}: {problem}" for problem in problems_in(response.content.decode())]
    assert pages > 30
    assert not found, "\n".join(found)
