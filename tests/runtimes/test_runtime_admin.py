"""The runtimes admin: superusers create global runtimes there (the enrollment token shown once, in the message);
tenant administrators see and write their tenants' local runtimes only (another tenant's is a 404, a global one is not
theirs to create); instances and tokens are read-only and token hashes never shown; writes go through the services."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages

from access.models import AuditEvent, hash_token
from config.actors import SYSTEM
from resources import services as resource_services
from resources.models import Task
from runtimes import services, tokens
from runtimes.models import AgentToken, EnrollmentToken, Runtime, RuntimeInstance

pytestmark = pytest.mark.django_db
BASE = "/admin/runtimes"


def local(org: Any, name: str = "edge", **fields: Any) -> Runtime:
    return services.create_local_runtime(actor=SYSTEM, org=org, name=name, **fields).runtime


def _form(**fields: Any) -> dict[str, Any]:
    base = {
        "name": "", "description": "", "labels": "[]", "region": "", "org": "",
        "instances-TOTAL_FORMS": "0", "instances-INITIAL_FORMS": "0",
        "agent_tokens-TOTAL_FORMS": "0", "agent_tokens-INITIAL_FORMS": "0",
        "enrollment_tokens-TOTAL_FORMS": "0", "enrollment_tokens-INITIAL_FORMS": "0",
    }  # fmt: skip
    return base | fields


def test_a_superuser_creates_a_global_runtime_and_sees_its_token_once(world, as_user) -> None:
    client = as_user(world.superuser)
    response = client.post(
        f"{BASE}/runtime/add/",
        _form(name="shared-eu", labels='["eu"]', allow_private_network="on", tenants=[str(world.acme.pk)]),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    runtime = Runtime.objects.get(name="shared-eu")
    assert (runtime.kind, runtime.org, runtime.labels, runtime.allow_private_network) == ("global", None, ["eu"],
                                                                                         True)  # fmt: skip
    assert list(runtime.tenants.all()) == [world.acme]
    (message,) = [str(m) for m in get_messages(response.wsgi_request) if "Enrollment token" in str(m)]
    raw = next(word for word in message.split() if word.startswith("cne_"))
    assert EnrollmentToken.objects.get(runtime=runtime).token_hash == hash_token(raw)
    assert AuditEvent.objects.filter(action="runtime.create", tenant=world.acme).exists()


def test_a_tenant_admin_creates_local_runtimes_only(world, as_user) -> None:
    client = as_user(world.tenant_admin)
    refused = client.post(f"{BASE}/runtime/add/", _form(name="mine"))  # no org: a global runtime
    assert refused.status_code == 200 and not Runtime.objects.filter(name="mine").exists()
    html = client.get(f"{BASE}/runtime/add/").content.decode()
    assert "allow_private_network" not in html and "is_platform_default" not in html
    assert str(world.globex_root.pk) not in html  # another tenant's orgs are not offered
    created = client.post(f"{BASE}/runtime/add/", _form(name="mine", org=str(world.marketing.pk)))
    assert created.status_code == 302
    runtime = Runtime.objects.get(name="mine")
    assert (runtime.kind, runtime.org) == ("local", world.marketing)
    theirs = client.post(f"{BASE}/runtime/add/", _form(name="theirs", org=str(world.globex_root.pk)))
    assert theirs.status_code == 200 and not Runtime.objects.filter(name="theirs").exists()


def test_a_tenant_admin_sees_their_tenants_runtimes_only(world, as_user) -> None:
    mine = local(world.marketing, "acme-box")
    theirs = local(world.globex_root, "globex-box")
    client = as_user(world.tenant_admin)
    listing = client.get(f"{BASE}/runtime/").content.decode()
    assert "acme-box" in listing and "globex-box" not in listing and ">platform<" not in listing
    assert client.get(f"{BASE}/runtime/{mine.pk}/change/").status_code == 200
    assert client.get(f"{BASE}/runtime/{theirs.pk}/change/").status_code == 404
    platform = Runtime.objects.get(is_platform_default=True)
    assert client.get(f"{BASE}/runtime/{platform.pk}/change/").status_code == 404
    response = client.post(f"{BASE}/runtime/{theirs.pk}/change/", _form(name="stolen"))
    assert response.status_code == 404 and Runtime.objects.get(pk=theirs.pk).name == "globex-box"
    superuser_list = as_user(world.superuser).get(f"{BASE}/runtime/").content.decode()
    assert "globex-box" in superuser_list and "platform" in superuser_list


def test_changes_go_through_the_service_with_the_opened_version(world, as_user) -> None:
    runtime = local(world.marketing)
    client = as_user(world.tenant_admin)
    url = f"{BASE}/runtime/{runtime.pk}/change/"
    saved = client.post(url, _form(name="edge", region="eu-west", paused="on", opened_version="1"))
    assert saved.status_code == 302
    runtime.refresh_from_db()
    assert (runtime.region, runtime.paused, runtime.version) == ("eu-west", True, 2)
    assert {"runtime.update", "runtime.pause"} <= set(AuditEvent.objects.values_list("action", flat=True))
    stale = client.post(url, _form(name="renamed", opened_version="1"))
    assert stale.status_code in (200, 303)
    assert Runtime.objects.get(pk=runtime.pk).name == "edge"


def test_instances_and_tokens_are_read_only_and_hashes_never_shown(world, as_user) -> None:
    runtime = local(world.marketing)
    agent, raw = tokens.issue_agent_token(RuntimeInstance.objects.create(runtime=runtime, hostname="box-1"))
    enrollment = EnrollmentToken.objects.get(runtime=runtime)
    client = as_user(world.tenant_admin)
    for url in (f"{BASE}/runtime/{runtime.pk}/change/", f"{BASE}/agenttoken/", f"{BASE}/agenttoken/{agent.pk}/change/",
                f"{BASE}/runtimeinstance/"):  # fmt: skip
        html = client.get(url).content.decode()
        assert agent.token_hash not in html and enrollment.token_hash not in html and raw not in html, url
    assert agent.prefix in client.get(f"{BASE}/agenttoken/").content.decode()
    assert client.get(f"{BASE}/agenttoken/add/").status_code == 403
    assert client.post(f"{BASE}/agenttoken/{agent.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AgentToken.objects.filter(pk=agent.pk).exists()
    theirs = local(world.globex_root, "globex-box")
    other, _ = tokens.issue_agent_token(RuntimeInstance.objects.create(runtime=theirs, hostname="globex-host"))
    assert client.get(f"{BASE}/agenttoken/{other.pk}/change/").status_code in (302, 404)
    assert "globex-host" not in client.get(f"{BASE}/runtimeinstance/").content.decode()


def test_the_revoke_action_revokes_through_the_service(world, as_user) -> None:
    runtime = local(world.marketing)
    agent, _ = tokens.issue_agent_token(RuntimeInstance.objects.create(runtime=runtime))
    response = as_user(world.tenant_admin).post(
        f"{BASE}/runtime/", {"action": "revoke_selected", "_selected_action": [str(runtime.pk)]}
    )
    assert response.status_code == 302
    assert AgentToken.objects.get(pk=agent.pk).revoked_at is not None
    assert AuditEvent.objects.filter(action="runtime.revoke", target_id=str(runtime.pk)).exists()


def test_deleting_a_busy_runtime_is_refused_with_a_message(world, as_user) -> None:
    runtime = local(world.marketing)
    resource_services.run_task(actor=SYSTEM, task=Task.objects.create(project=world.website, name="t", runtime=runtime))
    response = as_user(world.tenant_admin).post(f"{BASE}/runtime/{runtime.pk}/delete/", {"post": "yes"})
    assert response.status_code in (302, 303)
    assert Runtime.objects.filter(pk=runtime.pk).exists()
