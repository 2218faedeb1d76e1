"""Security headers on every face: a strict Content-Security-Policy (no inline script or style), Permissions-Policy,
Referrer-Policy and Cross-Origin-Opener-Policy. The browser side (no violation reported) is in e2e/test_csp_e2e.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

STRICT_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
DENIED_FEATURES = ["camera", "microphone", "geolocation", "payment", "usb"]


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def assert_hardened(response, policy: dict[str, str] = STRICT_POLICY) -> None:
    assert directives(response) == policy
    assert "Content-Security-Policy-Report-Only" not in response
    features = response["Permissions-Policy"].split(", ")
    for feature in DENIED_FEATURES:
        assert f"{feature}=()" in features
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_console_pages_carry_the_strict_policy(world, as_user):
    client = as_user(world.tenant_admin)
    for path in (f"/o/{world.marketing.pk}/", "/switch/", "/tokens/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_hardened(response)


def test_anonymous_pages_and_errors_carry_it_too(world, client):
    assert_hardened(client.get("/login/"))
    assert_hardened(client.get(f"/o/{world.globex_root.pk}/", follow=True))
    assert_hardened(client.get("/no-such-page/"))


def test_api_responses_carry_the_strict_policy(world, api_as, api):
    response = api_as(world.tenant_admin).get(f"/api/v1/orgs/{world.root.pk}")
    assert response.status_code == 200
    assert_hardened(response)
    assert_hardened(api.get("/api/v1/me"))  # 401
    assert_hardened(api.get("/api/v1/schema/"))


def test_admin_pages_carry_the_strict_policy(world, as_user):
    client = as_user(world.tenant_admin)
    for path in ("/admin/", "/admin/orgs/organization/", f"/admin/orgs/organization/{world.emea.pk}/change/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_hardened(response)


def test_the_swagger_ui_only_adds_data_images_and_loads_its_script_from_a_file(db, api):
    response = api.get("/api/v1/docs/")
    assert response.status_code == 200
    assert_hardened(response, {**STRICT_POLICY, "img-src": "'self' data:"})
    html = response.content.decode()
    assert "<style" not in html and " style=" not in html
    scripts = re.findall(r"<script([^>]*)>", html)
    assert len(scripts) == 3 and all("src=" in attributes for attributes in scripts)
    assert 'src="/api/v1/docs/?script="' in html

    script = api.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_the_admin_tree_indents_by_data_attribute_not_style(world, as_user):
    html = as_user(world.tenant_admin).get("/admin/orgs/organization/").content.decode()
    assert f'<div class="tree-title" data-level="3">{world.campaigns.name}</div>' in html
    assert "text-indent" not in html and "css/admin-tree.css" in html


TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates"]


@pytest.mark.parametrize("template", sorted(p for d in TEMPLATE_DIRS for p in d.rglob("*.html")), ids=str)
def test_no_template_has_inline_script_style_or_event_handler(template: Path):
    source = re.sub(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", "", template.read_text(), flags=re.S)
    assert not re.search(r"\sstyle=", source), "style attribute: use a class or a data attribute"
    assert not re.search(r"<style", source), "<style> element: use a stylesheet in static/css"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), "inline <script>: use a file in static/js"
    assert not re.search(r"\son[a-z]+=", source), "inline event handler: bind it in static/js"
    assert "javascript:" not in source
