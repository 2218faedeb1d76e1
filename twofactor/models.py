"""TOTP seeds sealed at rest.

django-otp keeps a TOTP device's key in clear in its ``key`` column. Canopy keeps secrets encrypted
(resources/crypto.py, MultiFernet over FIELD_ENCRYPTION_KEYS): the real key lives in ``TOTPSeed`` as ciphertext,
and the device's own column holds a random decoy. ``SealedTOTPDevice`` (a proxy of django-otp's model, used by
every Canopy path) reads the sealed key, so throttling and ``last_t`` stay django-otp's. Anything that asks
django-otp's plain model instead (a generic ``match_token``) checks codes against the decoy: it fails closed.
"""

from __future__ import annotations

import uuid
from binascii import unhexlify

from django.db import models
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from resources import crypto


class TOTPSeed(models.Model):
    """The sealed key of a device made by Canopy, and the device's public id (a UUID, as every public object has:
    django-otp's own primary keys are sequential integers)."""

    device = models.OneToOneField(TOTPDevice, on_delete=models.CASCADE, primary_key=True, related_name="canopy_seed")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ciphertext = models.TextField()

    class Meta:
        verbose_name = "TOTP seed"

    def __str__(self) -> str:
        return f"sealed seed of device {self.device_id}"


class SealedTOTPDevice(TOTPDevice):
    """A TOTP device whose key is read from its sealed seed (``select_related("canopy_seed")`` saves a query)."""

    class Meta:
        proxy = True
        verbose_name = "TOTP device"

    @property
    def bin_key(self) -> bytes:
        try:
            seed = self.canopy_seed
        except TOTPSeed.DoesNotExist:
            return super().bin_key  # a device made outside Canopy's services: its own column
        return unhexlify(str(crypto.decrypt(seed.ciphertext)).encode())

    @property
    def public_id(self) -> uuid.UUID | None:
        try:
            return self.canopy_seed.public_id
        except TOTPSeed.DoesNotExist:
            return None

    @classmethod
    def create_sealed(cls, **fields: object) -> SealedTOTPDevice:
        """A new device whose real key is sealed; the ``key`` column gets a random decoy."""
        device = cls.objects.create(key=default_key(), **fields)
        TOTPSeed.objects.create(device=device, ciphertext=crypto.encrypt(default_key()))
        return device
