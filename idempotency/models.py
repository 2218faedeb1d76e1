"""A request's ``Idempotency-Key`` and the first answer to it (idempotency/middleware.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """One key of one user: the request it was first sent with (its fingerprint) and, once that request finished,
    its answer, encrypted (an answer can hold a one-time secret: a runtime's enrollment token, an invitation's
    link). While ``status`` is null the first request is still being served. Kept until ``expires_at`` (24 hours),
    then purged."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key_hash = models.CharField(max_length=64, help_text="SHA-256 of the key (hex): the key itself is not kept.")
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and canonical body (hex).")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The answer's status; null in flight.")
    response = models.TextField(blank=True, help_text="The answer's headers and body, encrypted (Fernet).")

    class Meta:
        constraints = [
            # Decides the race between two requests with the same key: one inserts, the other is told to wait.
            models.UniqueConstraint(fields=["user", "key_hash"], name="idempotency_key_once_per_user"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_key_expiry")]

    def __str__(self) -> str:
        return f"{self.key_hash[:12]}… of {self.user_id}"
