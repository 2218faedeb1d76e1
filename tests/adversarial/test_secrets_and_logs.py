"""Secrets stay secret: a value turned secret takes a new one, and no token reaches a log line (finding 9)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from rest_framework.test import APIClient

from access.models import AuditEvent
from config.redaction import RedactingLogger, RedactSecrets, redact
from resources import services
from resources.models import EnvVar
from tests.adversarial.conftest import token_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def plain_var(world):
    return services.create_env_var(actor=world.tenant_admin, org=world.marketing, key="REGION", value="eu-west-1")


@pytest.mark.parametrize("body", [{"secret": True}, {"secret": True, "value": "eu-west-1"}])
def test_a_plain_value_cannot_be_turned_secret_as_it_is(world, plain_var, body):
    response = token_client(world.tenant_admin)[0].patch(f"/api/v1/env-vars/{plain_var.pk}", body, format="json")
    assert response.status_code == 400 and "new value" in response.json()["value"][0]
    stored = EnvVar.objects.get(pk=plain_var.pk)
    assert (stored.secret, stored.value, stored.secret_ciphertext) == (False, "eu-west-1", "")


def test_turning_a_variable_secret_with_a_new_value_keeps_no_plaintext(world, plain_var):
    response = token_client(world.tenant_admin)[0].patch(
        f"/api/v1/env-vars/{plain_var.pk}", {"secret": True, "value": "s3cret-Value-42"}, format="json"
    )
    assert response.status_code == 200 and response.json()["value"] is None
    stored = EnvVar.objects.get(pk=plain_var.pk)
    assert stored.secret and stored.value == "" and "s3cret-Value-42" not in stored.secret_ciphertext
    assert "s3cret-Value-42" not in str(list(AuditEvent.objects.values_list("changes", flat=True)))


@pytest.fixture
def django_log():
    """What Django's loggers write through the handler config/settings.py gives them."""
    handler = logging.getLogger("django").handlers[0]
    assert any(isinstance(f, RedactSecrets) for f in handler.filters)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_a_code_in_an_old_link_or_the_deprecated_path_is_masked_in_the_request_log(world, client, django_log):
    code = "inv_" + "A1b2C3d4" * 5
    client.get(f"/invitations/{code}/")  # 404: Django logs the path
    APIClient().post(f"/api/v1/invitations/{code}/accept?token={code}", {}, format="json")
    logging.getLogger("django.request").warning("Forbidden: /x Authorization: Bearer cnp_%s", "Z" * 40)
    written = django_log.getvalue()
    assert "Not Found" in written and code not in written and "Z" * 40 not in written
    assert "inv_[redacted]" in written


def test_gunicorn_access_log_fields_are_masked():
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET", "RAW_URI": "/invitations/inv_abcdefghijkl/?code=xyz", "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/invitations/inv_abcdefghijkl/", "QUERY_STRING": "code=xyz&page=2", "REMOTE_ADDR": "10.0.0.1",
        "HTTP_REFERER": "https://mail.example/?token=abc",
    }  # fmt: skip
    request = SimpleNamespace(headers=[("AUTHORIZATION", "Bearer cnp_secretsecretsecret")])
    atoms = logger.atoms(
        SimpleNamespace(status="200 OK", sent=10, headers=[]), request, environ, timedelta(milliseconds=5)
    )
    line = " ".join(str(v) for v in atoms.values())
    for secret in ("inv_abcdefghijkl", "code=xyz", "token=abc", "cnp_secretsecretsecret"):
        assert secret not in line
    assert "page=2" in line and "10.0.0.1" in line


def test_the_deployment_gunicorn_config_uses_the_masking_logger():
    printed = subprocess.run(
        [str(Path(sys.executable).parent / "gunicorn"), "--print-config", "-c", "config/gunicorn.conf.py",
         "config.wsgi"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "config.redaction.RedactingLogger" in printed


def test_redaction_leaves_ordinary_text_alone():
    text = "GET /o/8d3f/members/?page=2 by alice (inventory cnp)"
    assert redact(text) == text
