"""Hostile input gets a 4xx and changes nothing: NUL (PostgreSQL refuses it in text and jsonb: a DataError, a 500
before) and lone UTF-16 surrogates (no UTF-8 encoder takes them: a 500 before, on SQLite too) in the URL path,
query parameters, cookies, JSON and form bodies, JSON text typed in the console and uploaded CSV files. Every case
reads the database back. The last line of defence: a DataError that still gets through is a 400, a unique value
taken by a concurrent request (IntegrityError) a 409."""

from __future__ import annotations

import json
import logging
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DataError, IntegrityError

from access.models import AccessToken, AuditEvent, Team, TenantMembership
from access.services.teams import create_team
from config.hostile import Invalid, find_invalid
from orgs.models import Organization, Project, Tenant
from resources import services
from resources.models import Credential, EnvVar, Hidden, LookupRow, LookupTable, OrgSetting, Task

NUL = "\x00"
SURROGATE = "\ud800"
HOSTILE = [pytest.param(NUL, id="nul"), pytest.param(SURROGATE, id="surrogate")]
# A request charset Django honours for query strings and multipart fields: "\ud800" in the bytes becomes a lone
# surrogate in the decoded text. That is how one reaches a view without a JSON body.
UNICODE_ESCAPE = "charset=unicode_escape"


def database() -> tuple[Any, ...]:
    """Everything the requests below could write, read back."""
    return (
        list(Organization.objects.order_by("pk").values_list("pk", "name", "description", "parent_id", "deleted_at")),
        list(Project.objects.order_by("pk").values_list("pk", "name", "description")),
        list(Tenant.objects.order_by("pk").values_list("pk", "name", "plan")),
        list(get_user_model().objects.order_by("pk").values_list("pk", "username", "email")),
        list(TenantMembership.objects.order_by("pk").values_list("pk", "user_id", "tenant_id")),
        list(Team.objects.order_by("pk").values_list("pk", "name")),
        list(Credential.objects.order_by("pk").values_list("pk", "name", "fields", "secret_ciphertext")),
        list(LookupTable.objects.order_by("pk").values_list("pk", "name", "description")),
        sorted(LookupRow.objects.values_list("table_id", "key", "value")),
        list(EnvVar.objects.order_by("pk").values_list("pk", "key", "value")),
        list(OrgSetting.objects.order_by("pk").values_list("pk", "key", "value")),
        list(Hidden.objects.order_by("pk").values_list("pk", "kind", "name")),
        list(Task.objects.order_by("pk").values_list("pk", "name", "steps")),
        AccessToken.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def stock(world) -> dict[str, Any]:
    alice = world.tenant_admin
    return {
        "table": services.create_lookup_table(
            actor=alice, org=world.root, name="Countries", rows=[{"key": "FR", "value": "France"}]
        ),
        "credential": services.create_credential(
            actor=alice, org=world.marketing, name="CRM", kind="generic", fields={"user": "bot"}, secret={"p": "x"}
        ),
        "task": services.create_task(
            actor=alice, project=world.website, name="Sync", steps=[{"type": "log", "message": "hello"}]
        ),
        "team": create_team(actor=alice, org=world.marketing, name="Ops"),
    }


def escaped(text: str) -> str:
    """``text`` as the request charset unicode_escape reads it back (ASCII on the wire)."""
    return text.encode("unicode_escape").decode("ascii").replace("\\", "%5C")


def hostile_query(client: Any, path: str, name: str, char: str, **others: str) -> Any:
    """GET ``path`` with the parameter ``name`` holding ``char``: NUL percent-escaped, a surrogate through the
    request charset."""
    others_qs = "".join(f"&{key}={value}" for key, value in others.items())
    if char == NUL:
        return client.get(path, QUERY_STRING=f"{name}=x%00y{others_qs}")
    return get_in_unicode_escape(client, path, f"{name}=x{escaped(char)}y{others_qs}")


def get_in_unicode_escape(client: Any, path: str, query: str) -> Any:
    content_type = f"text/plain; {UNICODE_ESCAPE}"  # both: DRF's test client reads one, Django's the other
    return client.get(path, QUERY_STRING=query, CONTENT_TYPE=content_type, content_type=content_type)


def multipart(fields: dict[str, str], charset: str = "utf-8") -> tuple[bytes, str]:
    """A multipart body by hand, so that its charset can be one Django decodes lone surrogates from."""
    boundary = "hostile-boundary"
    codec = "unicode_escape" if charset == "unicode_escape" else "utf-8"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode(codec)
        + b"\r\n"
        for name, value in fields.items()
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}; charset={charset}"


def post_form(client: Any, path: str, fields: dict[str, str], char: str) -> Any:
    """POST form fields holding ``char``: a NUL as plain UTF-8, a surrogate through the unicode_escape charset."""
    body, content_type = multipart(fields, "utf-8" if char == NUL else "unicode_escape")
    return client.generic("POST", path, body, content_type=content_type)


def assert_refused(response: Any, **where: str) -> dict[str, Any]:
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["code"] == "invalid_characters"
    assert "not allowed" in body["detail"]
    for key, value in where.items():
        assert body[key] == value, body
    return body


# -- the one function ----------------------------------------------------------------------------------------------


def test_find_invalid_names_the_path_of_the_first_invalid_code_point():
    assert find_invalid({"rows": [{"key": "a", "value": "b"}, {"key": "c\x00"}]}) == Invalid("rows[1].key", 0, False, 1)
    assert find_invalid({"secret": {"pass\ud800": "x"}}) == Invalid("secret", 0xD800, in_key=True)
    assert find_invalid("\udfff") == Invalid("", 0xDFFF)
    assert find_invalid(("ok", ["\x00"])).path == "[1][0]"


def test_find_invalid_passes_clean_values_of_any_type_and_depth():
    assert find_invalid({"a": [1, 2.5, None, True, {"b": "ünïcödé ☃ 𝄞 \ufffd"}]}) is None
    deep: Any = "\x00"
    for _ in range(50_000):  # far deeper than Python's recursion limit
        deep = [deep]
    assert find_invalid(deep).code_point == 0


def test_the_message_never_quotes_the_text():
    found = find_invalid({"secret": {"password": "hunter2\x00"}})
    assert "hunter2" not in found.message()
    assert found.message() == "“secret.password” holds NUL (U+0000), which is not allowed in text."


# -- query parameters (API) ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", HOSTILE)
@pytest.mark.parametrize(
    "path, name, others",
    [
        ("/api/v1/orgs", "search", {}),
        ("/api/v1/orgs", "parent", {}),
        ("/api/v1/lookup-tables/{table}/rows", "search", {}),
        ("/api/v1/orgs/{root}/explain", "user", {"capability": "org.view"}),
        ("/api/v1/orgs/{root}/explain", "capability", {"user": "alice"}),
        ("/api/v1/orgs/{root}/audit-events", "actor", {}),
        ("/api/v1/orgs/{root}/audit-events", "action", {}),
        ("/api/v1/orgs/{root}/audit-events", "since", {}),
        ("/api/v1/tasks/{task}/runs", "status", {}),
        ("/api/v1/orgs", "page", {}),
    ],
)
def test_an_api_query_parameter_with_nul_or_a_surrogate_is_a_400_naming_it(
    world, stock, api_as, path, name, others, char
):
    path = path.format(root=world.root.pk, table=stock["table"].pk, task=stock["task"].pk)
    client = api_as(world.tenant_admin)
    before = database()
    response = hostile_query(client, path, name, char, **others)
    assert_refused(response, parameter=name)
    assert database() == before


@pytest.mark.parametrize("char", HOSTILE)
def test_a_parameter_name_with_nul_or_a_surrogate_is_refused_without_echoing_it(world, api_as, char):
    client = api_as(world.tenant_admin)
    if char == NUL:
        response = client.get("/api/v1/orgs", QUERY_STRING="se%00arch=x")
    else:
        response = get_in_unicode_escape(client, "/api/v1/orgs", f"se{escaped(char)}arch=x")
    body = assert_refused(response)
    assert "parameter" not in body and body["detail"].startswith("A parameter name holds")


def test_a_nul_in_the_url_path_is_a_400_before_any_lookup(world, stock, api_as):
    client = api_as(world.tenant_admin)
    before = database()
    response = client.delete(f"/api/v1/teams/{stock['team'].pk}/members/ali%00ce")
    assert_refused(response)
    assert database() == before


def test_a_nul_in_the_session_cookie_is_a_400_before_the_session_is_looked_up(world, client):
    client.cookies["sessionid"] = "abcdefgh\x00ijklmnop"
    response = client.get("/")
    assert response.status_code == 400
    assert "not allowed" in response.content.decode()


def test_a_clean_request_in_a_foreign_charset_still_works(world, api_as):
    response = get_in_unicode_escape(api_as(world.tenant_admin), "/api/v1/orgs", "search=Mark")
    assert response.status_code == 200 and response.json()["count"] == 1


# -- JSON bodies (API) ---------------------------------------------------------------------------------------------


def json_cases(world: Any, stock: dict[str, Any], bad: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, the field path named in the answer) for every family of JSON writes."""
    table, credential, task = stock["table"], stock["credential"], stock["task"]
    org = f"/api/v1/orgs/{world.marketing.pk}"
    return [
        ("post", "/api/v1/orgs", {"name": f"APAC{bad}", "parent": str(world.root.pk)}, "name"),
        ("patch", org, {"description": f"d{bad}"}, "description"),
        ("post", f"{org}/projects", {"name": f"P{bad}"}, "name"),
        ("post", f"{org}/hidden", {"type": "lookup_table", "name": f"Countries{bad}"}, "name"),
        ("post", f"{org}/lookup-tables",
         {"name": "T", "rows": [{"key": "a", "value": "b"}, {"key": f"k{bad}", "value": "v"}]}, "rows[1].key"),
        ("patch", f"/api/v1/lookup-tables/{table.pk}", {"rows": [{"key": "FR", "value": f"Fr{bad}"}]}, "rows[0].value"),
        ("post", f"/api/v1/lookup-tables/{table.pk}/import", {"csv": f"DE,Germany{bad}\n"}, "csv"),
        ("post", f"/api/v1/projects/{world.website.pk}/tasks",
         {"name": "T", "steps": [{"type": "log", "message": f"m{bad}"}]}, "steps[0].message"),
        ("patch", f"/api/v1/tasks/{task.pk}", {"steps": [{"type": "log", "message": f"m{bad}"}]}, "steps[0].message"),
        ("post", f"{org}/credentials", {"name": "C", "kind": "http_basic", "fields": {"username": f"u{bad}"},
                                        "secret": {"password": "p"}}, "fields.username"),
        ("post", f"{org}/credentials", {"name": "C", "kind": "http_basic", "fields": {"username": "u"},
                                        "secret": {"password": f"p{bad}"}}, "secret.password"),
        ("patch", f"/api/v1/credentials/{credential.pk}", {"secret": {"password": f"p{bad}"}}, "secret.password"),
        ("patch", f"/api/v1/credentials/{credential.pk}", {"fields": {"username": f"u{bad}"}}, "fields.username"),
        ("post", f"{org}/env-vars", {"key": "K", "value": f"v{bad}", "secret": True}, "value"),
        ("put", f"{org}/settings/allowed_invite_domains", {"value": [f"example.com{bad}"]}, "value[0]"),
        ("post", f"{org}/teams", {"name": f"Team{bad}"}, "name"),
        ("post", f"{org}/members", {"user": f"bob{bad}", "role": "guest"}, "user"),
        ("post", f"/api/v1/tasks/{task.pk}/shares", {"user": f"bob{bad}", "permission": "view"}, "user"),
    ]  # fmt: skip


@pytest.mark.parametrize("char", HOSTILE)
def test_a_json_body_with_nul_or_a_surrogate_is_a_400_naming_the_field_and_changes_nothing(world, stock, api_as, char):
    client = api_as(world.tenant_admin)
    for method, path, body, field in json_cases(world, stock, char):
        before = database()
        # json.dumps writes "\u0000" and "\ud800" as escapes: valid JSON text, as any client would send it.
        response = getattr(client, method)(path, json.dumps(body), content_type="application/json")
        assert_refused(response, field=field)
        assert database() == before, (method, path)


@pytest.mark.parametrize("char", HOSTILE)
def test_an_invalid_key_name_is_refused_and_not_echoed(world, stock, api_as, char):
    body = {"name": "C", "kind": "generic", "secret": {f"pass{char}word": "p"}}
    client = api_as(world.tenant_admin)
    before = database()
    response = client.post(
        f"/api/v1/orgs/{world.marketing.pk}/credentials", json.dumps(body), content_type="application/json"
    )
    answer = assert_refused(response, field="secret")
    assert answer["detail"].startswith("A key name in “secret”")
    assert database() == before


@pytest.mark.parametrize("char", HOSTILE)
def test_the_unauthenticated_endpoints_refuse_it_too(world, api, char):
    before = database()
    token = api.post("/api/v1/auth/token", json.dumps({"username": f"alice{char}", "password": "x"}),
                     content_type="application/json")  # fmt: skip
    assert_refused(token, field="username")
    signup = {"tenant_name": f"Evil{char}", "username": "evil", "email": "evil@example.com", "password": "Xy7-long-pw!"}
    assert_refused(api.post("/api/v1/signup", json.dumps(signup), content_type="application/json"), field="tenant_name")
    accept = api.post("/api/v1/invitations/tok/accept", json.dumps({"username": f"u{char}", "password": "p"}),
                      content_type="application/json")  # fmt: skip
    assert_refused(accept, field="username")
    assert database() == before


def test_a_json_body_nested_too_deeply_is_a_400_not_a_500(world, api_as):
    body = "[" * 100_000 + "]" * 100_000
    response = api_as(world.tenant_admin).post(
        f"/api/v1/projects/{world.website.pk}/tasks", body, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == "parse_error"


# -- form bodies (API) ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", HOSTILE)
def test_an_api_form_body_is_refused_415_hostile_or_not_and_changes_nothing(world, api_as, char):
    """The API reads JSON bodies only (issue #15; multipart only where a file is uploaded): a form body, with NUL or a
    surrogate or clean, answers 415 before any parser reads it."""
    client = api_as(world.tenant_admin)
    before = database()
    for name in (f"APAC{char}", "APAC"):
        response = post_form(client, "/api/v1/orgs", {"name": name, "parent": str(world.root.pk)}, char)
        assert response.status_code == 415, response.content[:300]
        assert response.json()["code"] == "unsupported_media_type"
    patch = client.patch(f"/api/v1/orgs/{world.marketing.pk}", "description=d%00",
                         content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert patch.status_code == 415 and patch.json()["code"] == "unsupported_media_type"
    assert database() == before


@pytest.mark.parametrize("char", HOSTILE)
def test_a_csv_upload_with_nul_or_a_surrogate_is_a_field_error_and_changes_nothing(world, stock, api_as, char):
    table = stock["table"]
    content = f"key,value\nDE,Germany\nIT,It{char}aly\n".encode("utf-8", "surrogatepass")
    client = api_as(world.tenant_admin)
    before = database()
    response = client.post(
        f"/api/v1/lookup-tables/{table.pk}/import",
        {"file": SimpleUploadedFile("rows.csv", content, "text/csv"), "mode": "replace"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "file" in response.json()
    if char == NUL:
        assert response.json()["file"] == ["The file (line 3) holds NUL (U+0000), which is not allowed in text."]
    assert database() == before


# -- the console and the admin -------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", HOSTILE)
@pytest.mark.parametrize(
    "path, name",
    [
        ("/switch/", "q"),
        ("/o/{root}/audit/", "actor"),
        ("/o/{root}/audit/", "action"),
        ("/o/{root}/explain/", "user"),
        ("/admin/resources/credential/", "q"),
        ("/admin/orgs/organization/", "q"),
    ],
)
def test_a_console_or_admin_query_parameter_with_nul_or_a_surrogate_is_the_400_page(world, as_user, path, name, char):
    response = hostile_query(as_user(world.tenant_admin), path.format(root=world.root.pk), name, char)
    assert response.status_code == 400
    html = response.content.decode()
    assert f"The parameter “{name}” holds" in html and "Nothing was changed" in html


@pytest.mark.parametrize("char", HOSTILE)
def test_a_console_form_field_with_nul_or_a_surrogate_is_the_400_page_and_changes_nothing(world, stock, as_user, char):
    client = as_user(world.tenant_admin)
    before = database()
    cases = [
        (f"/o/{world.root.pk}/new/", {"name": f"APAC{char}"}),
        (f"/o/{world.marketing.pk}/p/{world.website.pk}/tasks/",
         {"action": "create", "name": f"T{char}", "steps": "[]"}),
        (f"/o/{world.marketing.pk}/credentials/", {"action": "create", "name": "C", "kind": "http_basic",
                                                   "field_values": "username=u", "secret": f"password=p{char}"}),
        (f"/o/{world.marketing.pk}/settings/", {"action": "hide", "type": "lookup_table", "name": f"Countries{char}"}),
        ("/admin/resources/task/add/", {"project": str(world.website.pk), "name": f"T{char}", "steps": "[]"}),
    ]  # fmt: skip
    for path, fields in cases:
        response = post_form(client, path, fields, char)
        assert response.status_code == 400, path
        assert "which is not allowed in text" in response.content.decode()
    assert database() == before


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800"])
def test_json_steps_typed_in_the_console_are_a_field_error_and_changes_nothing(world, stock, as_user, escape):
    # The form text is plain ASCII: only parsing the JSON makes the NUL or the surrogate.
    steps = f'[{{"type": "log", "message": "hello{escape}"}}]'
    client = as_user(world.tenant_admin)
    before = database()
    create = client.post(f"/o/{world.marketing.pk}/p/{world.website.pk}/tasks/",
                         {"action": "create", "name": "Nightly", "steps": steps})  # fmt: skip
    assert create.status_code == 400
    assert "“[0].message” holds" in create.content.decode()
    edit = client.post(f"/o/{world.marketing.pk}/tasks/{stock['task'].pk}/",
                       {"action": "edit", "name": "Sync", "description": "", "steps": steps})  # fmt: skip
    assert edit.status_code == 400 and "which is not allowed in text" in edit.content.decode()
    admin = client.post("/admin/resources/task/add/", {"project": str(world.website.pk), "name": "N", "steps": steps})
    assert admin.status_code == 200 and "which is not allowed in text" in admin.content.decode()
    secret = client.post(
        "/admin/resources/credential/add/",
        {"org": str(world.marketing.pk), "name": "Billing", "kind": "generic", "description": "",
         "fields": "{}", "set_secret": f'{{"pin": "1{escape}"}}'},
    )  # fmt: skip
    assert secret.status_code == 200 and "“pin” holds" in secret.content.decode()
    assert database() == before


@pytest.mark.parametrize("char", HOSTILE)
def test_a_console_csv_import_with_nul_or_a_surrogate_is_a_field_error(world, stock, as_user, char):
    table = stock["table"]
    content = f"DE,Ger{char}many\n".encode("utf-8", "surrogatepass")
    before = database()
    response = as_user(world.tenant_admin).post(
        f"/o/{world.root.pk}/lookup-tables/{table.pk}/",
        {"action": "import", "mode": "replace", "file": SimpleUploadedFile("rows.csv", content, "text/csv")},
    )
    assert response.status_code == 400
    assert ("holds NUL" if char == NUL else "not UTF-8") in response.content.decode()
    assert database() == before


def test_a_nul_in_a_console_url_path_is_the_400_page(world, as_user):
    response = as_user(world.tenant_admin).get("/invitations/abc%00def/")
    assert response.status_code == 400 and "The URL path holds NUL" in response.content.decode()


# -- the last line: database errors --------------------------------------------------------------------------------

RACE = IntegrityError(
    'duplicate key value violates unique constraint "orgs_sibling_name"\nDETAIL: Key (name)=(Top secret) exists.'
)


@pytest.mark.parametrize(
    "error, status, code",
    [(RACE, 409, "conflict"), (DataError("value too long for type character varying(100)"), 400, "invalid")],
)
def test_a_database_error_that_gets_through_is_a_4xx_in_the_api_logged_as_a_warning(
    world, api_as, caplog, error, status, code
):
    with mock.patch("orgs.services.create_org", side_effect=error), caplog.at_level(logging.WARNING):
        response = api_as(world.tenant_admin).post(
            "/api/v1/orgs", {"name": "APAC", "parent": str(world.root.pk)}, format="json"
        )
    assert response.status_code == status
    assert response.json()["code"] == code and set(response.json()) == {"detail", "code"}
    [record] = [r for r in caplog.records if r.name == "config.hostile"]
    assert record.levelno == logging.WARNING and f"answered {status}" in record.getMessage()
    assert "Top secret" not in record.getMessage()  # the database's DETAIL line quotes the row


@pytest.mark.parametrize("error, status", [(RACE, 409), (DataError("invalid byte sequence"), 400)])
def test_a_database_error_that_gets_through_is_a_4xx_page_in_the_console(world, as_user, caplog, error, status):
    with mock.patch("orgs.services.create_org", side_effect=error), caplog.at_level(logging.WARNING):
        response = as_user(world.tenant_admin).post(f"/o/{world.root.pk}/new/", {"name": "APAC"})
    assert response.status_code == status
    assert "Back to Canopy" in response.content.decode()
    assert any(r.name == "config.hostile" and r.levelno == logging.WARNING for r in caplog.records)
