"""Admin pages of governance, scoped to the staff user's tenants: the attestations of access reviews, read-only
(they are made on the review page or through the API, each with its audit event)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from config.admin import ReadOnlyAdmin
from governance.models import Attestation


@admin.register(Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ["attested_at", "attested_by_name", "holder_name", "role_key", "grant_kind", "org", "note"]
    list_filter = ["grant_kind", "role_key"]
    search_fields = ["holder_name", "attested_by_name", "grant_id", "note"]
    date_hierarchy = "attested_at"
    list_select_related = ["org"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Attestation._meta.fields]
