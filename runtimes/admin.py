"""Admin pages of runtimes: superusers see and write every runtime (a runtime with no organization is a global one,
created here or with POST /api/v1/runtimes); tenant administrators see their tenants' local runtimes, scoped like
every declaration (resources.admin.DeclarationAdmin). Every write goes through runtimes.services (policy, inheritance
rules, audit); a refusal is an error message and nothing is saved.

Instances and tokens are read-only. Token hashes are never shown: an agent token is named by its prefix, an
enrollment token by when it was made; the raw enrollment token of a new runtime (or of "new enrollment token") is
shown once, in the message after the save.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from access import policy
from config.admin import ReadOnlyAdmin
from config.errors import DomainError
from resources.admin import DeclarationAdmin, ReadOnlyInline, VersionedForm
from runtimes import services
from runtimes.models import AgentToken, EnrollmentToken, Runtime, RuntimeInstance

LOCAL_FIELDS = ["name", "description", "labels", "region", "sovereign", "paused"]
SUPERUSER_FIELDS = ["allow_private_network", "all_tenants", "tenants", "is_platform_default"]
META_FIELDS = ["kind", "last_seen", "agent_version", "created_by", "created_at", "updated_at"]


class RuntimeInstanceInline(ReadOnlyInline):
    model = RuntimeInstance
    fields = ["hostname", "version", "created_at", "last_heartbeat", "offline_at"]


class AgentTokenInline(ReadOnlyInline):
    model = AgentToken
    fields = ["prefix", "instance", "created_at", "expires_at", "revoked_at", "last_used_at"]


class EnrollmentTokenInline(ReadOnlyInline):
    model = EnrollmentToken
    fields = ["created_by", "created_at", "expires_at", "used_at", "used_by"]


class RuntimeForm(VersionedForm):
    class Meta:
        model = Runtime
        fields = ["org", *LOCAL_FIELDS, "locked", *SUPERUSER_FIELDS]


def _is_superuser(request: HttpRequest) -> bool:
    return policy.access_for(request.user).is_superuser


@admin.register(Runtime)
class RuntimeAdmin(DeclarationAdmin):
    form = RuntimeForm
    kind_fields = tuple(LOCAL_FIELDS)
    inlines = [RuntimeInstanceInline, AgentTokenInline, EnrollmentTokenInline]
    list_display = ["name", "kind", "org", "sovereign", "paused", "last_seen", "agent_version", "updated_at"]
    list_filter = ["kind", "sovereign", "paused", "locked"]
    search_fields = ["name", "org__name"]
    actions = ["pause_selected", "resume_selected", "revoke_selected", "enrollment_token_selected"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        superuser = _is_superuser(request)
        fields = ["org", *LOCAL_FIELDS]
        if obj is None or obj.org_id is not None:
            fields.append("locked")
        if superuser and (obj is None or obj.org_id is None):
            fields += SUPERUSER_FIELDS
        elif superuser:
            fields.append("allow_private_network")
        if obj is not None:
            fields += [*META_FIELDS, "opened_version"]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["org", *META_FIELDS] if obj is not None else []

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and "org" in form.base_fields:
            org = form.base_fields["org"]
            org.required = not _is_superuser(request)
            org.help_text = (
                "Where the local runtime is declared. Leave empty for a global runtime (the platform's)."
                if _is_superuser(request)
                else "Where the local runtime is declared."
            )
        return form

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenants":
            kwargs["widget"] = forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _announce(self, request: HttpRequest, enrollment: services.Enrollment) -> None:
        self.message_user(
            request,
            f"Enrollment token for {enrollment.runtime.name} (shown once, valid one hour, single use): "
            f"{enrollment.raw} — start an agent with: {enrollment.command}",
            level=messages.WARNING,
        )

    def save_model(self, request: HttpRequest, obj: Runtime, form: forms.Form, change: bool) -> None:
        assert isinstance(form, VersionedForm)
        data = form.cleaned_data
        if change:
            runtime = Runtime.objects.select_related("org").get(pk=obj.pk)
            names = [*LOCAL_FIELDS, "locked", *SUPERUSER_FIELDS]
            fields = self.changed(form, *[n for n in names if n in form.fields])
            if "tenants" in fields or "all_tenants" in fields:
                all_tenants = data.get("all_tenants", runtime.all_tenants)
                fields.pop("all_tenants", None)
                fields["tenants"] = "all" if all_tenants else list(data.get("tenants") or [])
            if fields:
                services.update_runtime(actor=request.user, runtime=runtime, version=form.version(), **fields)
            return
        given = {name: data[name] for name in LOCAL_FIELDS if name in data}
        if data.get("org") is not None:
            if "allow_private_network" in data:
                given["allow_private_network"] = data["allow_private_network"]
            enrollment = services.create_local_runtime(
                actor=request.user, org=data["org"], locked=data.get("locked", False), **given
            )
        else:
            given.pop("paused", None)
            enrollment = services.create_global_runtime(
                actor=request.user,
                tenants="all" if data.get("all_tenants") else list(data.get("tenants") or []),
                allow_private_network=data.get("allow_private_network", False),
                is_platform_default=data.get("is_platform_default", False),
                paused=data.get("paused", False),
                **given,
            )
        obj.pk = enrollment.runtime.pk
        self._announce(request, enrollment)

    def delete_model(self, request: HttpRequest, obj: Runtime) -> None:
        services.delete_runtime(actor=request.user, runtime=obj)

    def _each(self, request: HttpRequest, queryset: QuerySet, write: Any, done: str) -> None:
        count = 0
        for runtime in queryset.select_related("org"):
            try:
                write(runtime)
                count += 1
            except (DomainError, ValidationError) as exc:  # one runtime's refusal is reported, the others go on
                self.report(request, exc)
        if count:
            self.message_user(request, done.format(count=count))

    @admin.action(description="Pause the selected runtimes")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset, lambda r: services.pause(actor=request.user, runtime=r), "{count} runtime(s) paused."
        )

    @admin.action(description="Resume the selected runtimes")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset, lambda r: services.resume(actor=request.user, runtime=r), "{count} runtime(s) resumed."
        )

    @admin.action(description="Revoke every agent token of the selected runtimes")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request, queryset, lambda r: services.revoke(actor=request.user, runtime=r),
            "The agents of {count} runtime(s) were revoked.",
        )  # fmt: skip

    @admin.action(description="New enrollment token (shown once)")
    def enrollment_token_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        def issue(runtime: Runtime) -> None:
            self._announce(request, services.new_enrollment_token(actor=request.user, runtime=runtime))

        self._each(request, queryset, issue, "{count} enrollment token(s) issued.")


class RuntimePartAdmin(ReadOnlyAdmin):
    """Runtime processes and tokens: seen by whoever sees their runtime, never written here (the agent API and the
    runtime's actions do that)."""

    tenant_path = "runtime__org__tenant"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("runtime__org")


@admin.register(RuntimeInstance)
class RuntimeInstanceAdmin(RuntimePartAdmin):
    list_display = ["hostname", "runtime", "version", "last_heartbeat", "offline_at", "created_at"]
    search_fields = ["hostname", "runtime__name"]
    fields = readonly_fields = ("id", "runtime", "hostname", "version", "created_at", "last_heartbeat", "offline_at")


@admin.register(AgentToken)
class AgentTokenAdmin(RuntimePartAdmin):
    list_display = ["prefix", "runtime", "instance", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "runtime__name"]
    # never the hash
    fields = readonly_fields = (
        "prefix",
        "runtime",
        "instance",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
