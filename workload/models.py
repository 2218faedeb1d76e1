"""Workload identity: the keys Canopy signs run tokens with, and a record of every token issued.

A key lives ``next → active → retired → deleted``. The next key is published in the JWKS one rotation before it
signs, so that a verifier holding a cached JWKS already knows it when the first token signed by it arrives; a retired
key stays published until the last token it signed (``signed_until``) has expired, plus a leeway for clocks. At most
one key is active and at most one is next (partial unique constraints): two signers, or two candidates, cannot exist.
"""

from __future__ import annotations

import uuid

from django.db import models


class SigningKey(models.Model):
    class State(models.TextChoices):
        NEXT = "next", "next (published, not signing yet)"
        ACTIVE = "active", "active (signing)"
        RETIRED = "retired", "retired (published until its last token expires)"

    class Alg(models.TextChoices):
        RS256 = "RS256", "RS256 (RSA 2048, SHA-256)"
        ES256 = "ES256", "ES256 (P-256, SHA-256)"

    # RFC 7638 thumbprint (SHA-256, base64url) of the public key: the same key always has the same kid.
    kid = models.CharField(max_length=64, unique=True, editable=False)
    alg = models.CharField(max_length=10, choices=Alg.choices, default=Alg.RS256, editable=False)
    # The private key as PEM, encrypted (resources.crypto): never shown, never leaves workload.keys.
    private_key = models.TextField(editable=False)
    public_jwk = models.JSONField(editable=False)  # {"kty", "n", "e"} or {"kty", "crv", "x", "y"}: no "d"
    state = models.CharField(max_length=10, choices=State.choices, default=State.NEXT, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The latest exp of a token this key signed: it stays in the JWKS until then (plus the leeway).
    signed_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=models.Q(state="active"), name="workload_one_active"),
            models.UniqueConstraint(fields=["state"], condition=models.Q(state="next"), name="workload_one_next"),
        ]

    def __str__(self) -> str:
        return f"{self.alg} key {self.kid[:12]}… ({self.state})"


class IssuedToken(models.Model):
    """One identity token issued to a run's agent: who asked, for which audience, signed by which key, until when.
    The token itself is not kept (it is a bearer credential); its ``jti`` is. Counting these rows per run is the
    rate limit (WORKLOAD_IDENTITY_TOKENS_PER_RUN)."""

    jti = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey("resources.Run", on_delete=models.CASCADE, related_name="identity_tokens")
    audience = models.CharField(max_length=255)
    kid = models.CharField(max_length=64)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["run", "issued_at"], name="workload_token_run")]

    def __str__(self) -> str:
        return f"token {self.jti} for {self.audience}"
