"""Integration tasks, their shares and runs.

Rules enforced here, whatever face calls:
- ``steps`` is a list of typed steps whose shape is checked now (runtimes.agent.steps executes them): one serializer
  per step type (STEP_TYPES), the same definitions the OpenAPI schema's ``Step`` oneOf is generated from;
- the credentials and lookup tables the steps name must be ones the editor may see in the task's org; what they
  resolve to is bound to the task (resources.services.references), and a run whose names resolve to something
  else by then fails with a clear error;
- sharing needs ``task.share`` and the org setting ``allow_task_sharing``; a share reaches users of the tenant and
  teams (that the sharer may see) defined at the project's org or above, also outside the project; one share per
  holder (re-sharing changes the level); nobody shares (or unshares) a level they do not hold on the task;
- Run needs ``task.run`` and queues a run; Stop cancels a queued run at once and asks a running one to stop.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from access import audit, policy
from access.models import Team, TenantMembership
from access.roles import SHARE_LEVELS
from config.actors import user_or_none
from config.concurrency import Versions, save_changes, touch
from config.errors import Conflict, Forbidden, NotFound
from orgs.models import Organization, Project
from resources.models import Run, RunLogLine, Task, TaskTeamShare, TaskUserShare
from resources.services import references
from resources.services.declarations import clean_name, fresh_for_change
from resources.settings_registry import setting_value
from runtimes import wakeup
from runtimes.models import Runtime
from runtimes.placement import check_task_runtime, place

MAX_STEPS = 100
MAX_TEXT = 10_000
MAX_URL = 2000
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
LOG_LEVELS = ("info", "warning", "error")
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
AUDIENCE_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,255}$")  # a workload identity token's aud (workload.services)
SHARE_PERMISSIONS = {"view": "view_task", "run": "run_task", "edit": "change_task"}
PERMISSION_LEVELS = {codename: level for level, codename in SHARE_PERMISSIONS.items()}

# -- steps: each step type is a serializer, the one definition clean_steps validates with and the OpenAPI schema
# describes (resources.serializers.StepsField: the ``Step`` oneOf, discriminated by ``type``). Each field checks its
# value itself and says what is wrong in one sentence; clean_steps prefixes it with the step's number.

# Any JSON value (an http step's body, a lookup's default): said precisely, a client may send any of these.
JSON_VALUE: dict[str, Any] = {
    "description": "Any JSON value: text, number, true/false, an object or a list (null allowed).",
    "nullable": True,
    "oneOf": [
        {"type": "string"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "object", "additionalProperties": True},
        {"type": "array", "items": {"type": "object", "additionalProperties": True}},
    ],
}


class CheckedField(serializers.Field):
    """A step field that checks a present value itself (``problem``: None when fine) and answers one sentence, the
    same whatever is wrong with it (null included), keeping the value as given. A missing required field is left to
    clean_steps, which names all of them in one message."""

    def run_validation(self, data: Any = empty) -> Any:
        if data is empty:
            return super().run_validation(data)
        if (message := self.problem(data)) is not None:
            raise serializers.ValidationError(message, code="invalid")
        return data

    def problem(self, data: Any) -> str | None:
        raise NotImplementedError


class StepText(CheckedField, serializers.CharField):
    """A non-empty text of at most MAX_TEXT characters."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=MAX_TEXT, **kwargs)

    def problem(self, data: Any) -> str | None:
        if not isinstance(data, str) or not data.strip() or len(data) > MAX_TEXT:
            return f"“{self.field_name}” must be a non-empty text of at most {MAX_TEXT:,} characters."
        return None


class StepVariable(CheckedField, serializers.RegexField):
    """The variable a step's result goes into."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(VARIABLE_RE, **kwargs)

    def problem(self, data: Any) -> str | None:
        if not (isinstance(data, str) and VARIABLE_RE.match(data)):
            return "“into” must be a variable name (letters, digits, underscores)."
        return None


class StepChoice(CheckedField, serializers.ChoiceField):
    def problem(self, data: Any) -> str | None:
        if not isinstance(data, str) or data not in self.choices:
            return self.error_messages["invalid_choice"]
        return None


class StepUrl(CheckedField, serializers.URLField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=MAX_URL, **kwargs)

    def problem(self, data: Any) -> str | None:
        parts = urlsplit(data) if isinstance(data, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(data) > MAX_URL:
            return "“url” must be an http:// or https:// address."
        return None


class StepHeaders(CheckedField, serializers.DictField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.CharField(allow_blank=True), **kwargs)

    def problem(self, data: Any) -> str | None:
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            return "“headers” must be an object of header names to text values."
        return None


@extend_schema_field(JSON_VALUE)
class StepJson(CheckedField, serializers.JSONField):
    def problem(self, data: Any) -> str | None:
        return None


def audience_error(audience: Any) -> str | None:
    """Why ``audience`` cannot be a workload identity token's ``aud`` (None when it can)."""
    if not isinstance(audience, str) or not AUDIENCE_RE.match(audience):
        return "must be a non-empty text of at most 255 characters without whitespace or control characters."
    return None


class IdentitySerializer(serializers.Serializer):
    audience = serializers.RegexField(
        AUDIENCE_RE, max_length=255, help_text="The token's `aud`: who will accept it (e.g. sts.amazonaws.com)."
    )

    def run_validation(self, data: Any = empty) -> Any:
        if data is empty:
            return super().run_validation(data)
        if not isinstance(data, dict) or set(data) != {"audience"}:
            raise serializers.ValidationError("“identity” must be an object with an “audience” only.")
        if (problem := audience_error(data["audience"])) is not None:
            raise serializers.ValidationError(f"“identity.audience” {problem}")
        return data


class StepSerializer(serializers.Serializer):
    """What every step has: its ``type`` (one value per step type: the discriminator) and an optional ``name``."""

    STEP_TYPE = ""

    name = StepText(required=False, help_text="Shown in the run's results and logs.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        kind = StepChoice(choices=[self.STEP_TYPE], help_text="The step type.")
        return {"type": kind, **fields}


class HttpStepSerializer(StepSerializer):
    """Calls an HTTP endpoint; the answer (``{"status","headers","body"}``) goes into ``into``."""

    STEP_TYPE = "http"

    method = StepChoice(
        choices=HTTP_METHODS, error_messages={"invalid_choice": f"“method” must be one of {', '.join(HTTP_METHODS)}."}
    )
    url = StepUrl(help_text="An http:// or https:// address (templated).")
    headers = StepHeaders(required=False, help_text="Header names to text values (templated).")
    body = StepJson(required=False, help_text="Sent as JSON (an object or list) or as text.")
    credential = StepText(required=False, help_text="The name of a credential of the task's org (or above).")
    identity = IdentitySerializer(
        required=False,
        help_text="Sends `Authorization: Bearer <workload identity token>` for this run and audience: the step's "
        "one source of authentication (no Authorization header, no credential beside it).",
    )
    into = StepVariable(required=False, help_text="The variable the answer goes into.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = []
        if "identity" in attrs:
            if any(str(name).lower() == "authorization" for name in attrs.get("headers", {})):
                errors.append("“identity” sends the Authorization header: remove the step's own Authorization header.")
            if "credential" in attrs:
                errors.append("“identity” authenticates the request: a step has either an identity or a credential.")
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class LookupStepSerializer(StepSerializer):
    """The value of ``key`` in a lookup table goes into ``into`` (``default`` when the key is absent)."""

    STEP_TYPE = "lookup"

    table = StepText(help_text="The name of a lookup table of the task's org (or above).")
    key = StepText(help_text="The key to look up (templated).")
    into = StepVariable(required=False, help_text="The variable the value goes into.")
    default = StepJson(required=False, help_text="The value when the key is absent.")


class TransformStepSerializer(StepSerializer):
    """A JMESPath expression over the variables; its result goes into ``into``."""

    STEP_TYPE = "transform"

    expression = StepText(help_text="A JMESPath expression over the variables.")
    into = StepVariable(required=False, help_text="The variable the result goes into.")


class LogStepSerializer(StepSerializer):
    """Writes a line to the run's log."""

    STEP_TYPE = "log"

    message = StepText(help_text="The line (templated).")
    level = StepChoice(
        choices=LOG_LEVELS, required=False, default="info",
        error_messages={"invalid_choice": "“level” must be info, warning or error."},
    )  # fmt: skip


STEP_TYPES: dict[str, type[StepSerializer]] = {
    step.STEP_TYPE: step
    for step in (HttpStepSerializer, LookupStepSerializer, TransformStepSerializer, LogStepSerializer)
}


def clean_steps(steps: Any) -> list[dict[str, Any]]:
    """The steps, checked: a list of at most 100 objects, each with a known ``type`` and that type's fields (its
    serializer in STEP_TYPES). The steps are kept as given."""
    if steps is None:
        return []
    if not isinstance(steps, list):
        raise ValidationError({"steps": ["Give a list of steps."]})
    if len(steps) > MAX_STEPS:
        raise ValidationError({"steps": [f"At most {MAX_STEPS} steps."]})
    errors = []
    for number, step in enumerate(steps, start=1):
        errors += [f"Step {number}: {message}" for message in step_errors(step)]
    if errors:
        raise ValidationError({"steps": errors[:20]})
    return steps


def _messages(detail: Any) -> list[str]:
    """The sentences of a serializer's errors, nested ones included, in order."""
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _messages(value)]
    if isinstance(detail, list):
        return [message for value in detail for message in _messages(value)]
    return [str(detail)]


def step_errors(step: Any) -> list[str]:
    """What is wrong with one step (empty when nothing is): the fields its type needs, the fields it does not know,
    then each field's own sentence."""
    if not isinstance(step, dict):
        return ["give an object with a “type”."]
    kind = step.get("type")
    if not isinstance(kind, str) or kind not in STEP_TYPES:
        return [f"“type” must be one of {', '.join(STEP_TYPES)}."]
    serializer = STEP_TYPES[kind](data=step)
    fields = serializer.fields
    errors = []
    if missing := sorted(name for name, field in fields.items() if field.required and name not in step):
        errors.append(f"a {kind} step needs {', '.join(missing)}.")
    if unknown := sorted(set(step) - set(fields)):
        errors.append(f"unknown field(s) {', '.join(unknown)} for a {kind} step.")
    if not serializer.is_valid():
        for name, detail in serializer.errors.items():
            if name in missing:
                continue
            errors += _messages(detail)
    return errors


# -- tasks ---------------------------------------------------------------------------------------------------------


def create_task(
    *,
    actor: Any,
    project: Project,
    name: str,
    description: str = "",
    steps: list[Any] | None = None,
    runtime: Runtime | None = None,
    retry_on_lost: bool = False,
) -> Task:
    """A task of ``project``. ``runtime`` (None: the default applies when it runs) must be one the editor sees in the
    project's org and that its effective ``allowed_runtimes`` allows (ValidationError on ``runtime`` otherwise)."""
    policy.authorize(actor, "task.create", project)
    name = clean_name(name)
    steps = clean_steps(steps)
    check_task_runtime(project.org, runtime, viewer=actor)
    bindings = references.bind(actor=actor, org=project.org, steps=steps)
    with transaction.atomic():
        if Task.objects.filter(project=project, name__iexact=name).exists():
            raise Conflict(f"A task named “{name}” exists in {project.name} already.", code="name_taken")
        task = Task.objects.create(
            project=project, name=name, description=description, steps=steps, bindings=bindings,
            created_by=user_or_none(actor), runtime=runtime, retry_on_lost=bool(retry_on_lost),
        )  # fmt: skip
        changes: dict[str, Any] = {"name": name, "project": project.name, "steps": len(steps)}
        if runtime is not None:
            changes["runtime"] = runtime.name
        if retry_on_lost:
            changes["retry_on_lost"] = True
        audit.record(
            actor=actor, action="task.create", tenant=project.org.tenant_id, org=project.org, target=task,
            changes=changes,
        )  # fmt: skip
    return task


def update_task(*, actor: Any, task: Task, version: Versions = None, **fields: Any) -> Task:
    """Change name, description, steps, runtime or retry_on_lost. The row is re-read under its lock and only what
    changed is saved, so a concurrent change of another field survives; new steps are bound
    (resources.services.references) in the fresh row's org, by this editor; a new runtime is checked like on
    create. Returns the fresh task."""
    policy.authorize(actor, "task.edit", task)
    if "retry_on_lost" in fields:
        fields["retry_on_lost"] = bool(fields["retry_on_lost"])
    if "name" in fields:
        fields["name"] = clean_name(fields["name"])
    if "steps" in fields:
        fields["steps"] = clean_steps(fields["steps"])
    with transaction.atomic():
        task = fresh_for_change(task, actor=actor, capability="task.edit", version=version)
        if "steps" in fields:
            # Every name the steps use, checked against what this editor may see (not only the changed steps: an
            # editor could otherwise point a step that uses someone else's credential at their own server).
            fields["bindings"] = references.bind(actor=actor, org=task.project.org, steps=fields["steps"])
        if "runtime" in fields and fields["runtime"] is not None and fields["runtime"].pk != task.runtime_id:
            check_task_runtime(task.project.org, fields["runtime"], viewer=actor)
        if "name" in fields and (
            Task.objects.filter(project_id=task.project_id, name__iexact=fields["name"]).exclude(pk=task.pk).exists()
        ):
            raise Conflict(f"A task named “{fields['name']}” exists in this project already.", code="name_taken")
        changes = save_changes(task, fields)
        changes.pop("bindings", None)
        if "runtime" in changes:
            changes["runtime"] = [r.name if r is not None else None for r in changes["runtime"]]
        if "steps" in changes:
            changes["steps"] = [len(changes["steps"][0]), len(changes["steps"][1])]
        audit.record(
            actor=actor, action="task.update", tenant=task.project.org.tenant_id, org=task.project.org, target=task,
            changes=changes,
        )  # fmt: skip
    return task


def delete_task(*, actor: Any, task: Task, version: Versions = None) -> None:
    policy.authorize(actor, "task.delete", task)
    with transaction.atomic():
        task = fresh_for_change(task, actor=actor, capability="task.delete", version=version)
        audit.record(
            actor=actor, action="task.delete", tenant=task.project.org.tenant_id, org=task.project.org, target=task,
            changes={"name": task.name},
        )  # fmt: skip
        task.delete()


# -- shares --------------------------------------------------------------------------------------------------------


def _permission(codename: str) -> Permission:
    content_type = ContentType.objects.get_for_model(Task)
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename=codename, defaults={"name": codename.replace("_", " ").capitalize()}
    )
    return permission


def share_task(
    *,
    actor: Any,
    task: Task,
    permission: str,
    user: Any = None,
    team: Team | None = None,
    version: Versions = None,
) -> TaskUserShare | TaskTeamShare:
    """Share the task with a user or a team at ``permission`` (re-sharing changes the level). Who may hold it is
    part of the task: the change locks the task's row and raises its version, so two sharers never undo each
    other and a stale sharer (``version``) is refused."""
    policy.authorize(actor, "task.share", task)
    if permission not in SHARE_PERMISSIONS:
        raise ValidationError({"permission": [f"Give one of: {', '.join(SHARE_PERMISSIONS)}."]})
    if (user is None) == (team is None):
        raise ValidationError({"user": ["Give either a user or a team."]})
    codename = SHARE_PERMISSIONS[permission]
    perm = _permission(codename)
    with transaction.atomic():
        task = fresh_for_change(task, actor=actor, capability="task.share", version=version)
        org = task.project.org
        if not setting_value(org, "allow_task_sharing"):
            raise Forbidden(
                f"Task sharing is turned off for {org.name} (setting allow_task_sharing).", code="sharing_disabled"
            )
        if user is not None and not TenantMembership.objects.filter(tenant_id=org.tenant_id, user=user).exists():
            raise ValidationError({"user": ["No such user in this tenant."]})
        if team is not None and (
            not Organization.objects.filter(org.ancestors_q(), pk=team.org_id).exists()
            or not policy.can(actor, "member.view", team.org)
        ):
            raise ValidationError({"team": ["No such team at this organization or above it."]})
        policy.authorize_delegation(
            actor, SHARE_LEVELS[codename], task, action=f"share this task at the {permission} level"
        )
        if user is not None:
            share, created = TaskUserShare.objects.get_or_create(
                user=user, content_object=task, defaults={"permission": perm, "granted_by": user_or_none(actor)}
            )
            holder = user.get_username()
        else:
            assert team is not None
            share, created = TaskTeamShare.objects.get_or_create(
                group_id=team.group_id,
                content_object=task,
                defaults={"permission": perm, "granted_by": user_or_none(actor)},
            )
            holder = f"team {team.name}"
        previous = None if created else PERMISSION_LEVELS.get(share.permission.codename)
        if previous is not None:  # changing a share's level takes away what it gave, too
            policy.authorize_delegation(
                actor, SHARE_LEVELS[share.permission.codename], task, action=f"change a {previous} share of this task"
            )
        if created or share.permission_id != perm.pk:
            if not created:
                share.permission = perm
                share.save(update_fields=["permission"])
            touch(task)
        audit.record(
            actor=actor, action="task.share", tenant=org.tenant_id, org=org, target=task,
            changes={"holder": holder, "permission": permission, "previous": previous},
        )  # fmt: skip
    if user is not None:
        policy.forget(user)
    return share


def unshare_task(*, actor: Any, task: Task, share_id: Any, version: Versions = None) -> Task:
    """Remove a share (under the task's lock, its version raised). Returns the fresh task."""
    policy.authorize(actor, "task.share", task)
    with transaction.atomic():
        task = fresh_for_change(task, actor=actor, capability="task.share", version=version)
        share = (
            TaskUserShare.objects.filter(content_object=task, pk=share_id).select_related("user", "permission").first()
            or TaskTeamShare.objects.filter(content_object=task, pk=share_id)
            .select_related("group__team", "permission")
            .first()
        )
        if share is None:
            raise NotFound("No such share.")
        level = PERMISSION_LEVELS.get(share.permission.codename, "view")
        policy.authorize_delegation(
            actor, SHARE_LEVELS[share.permission.codename], task, action=f"remove a {level} share of this task"
        )
        holder = share.user.get_username() if isinstance(share, TaskUserShare) else f"team {share.group.team.name}"
        share.delete()
        touch(task)
        audit.record(
            actor=actor, action="task.unshare", tenant=task.project.org.tenant_id, org=task.project.org, target=task,
            changes={"holder": holder},
        )  # fmt: skip
    if isinstance(share, TaskUserShare):
        policy.forget(share.user)
    return task


def shares_of(task: Task) -> list[dict[str, Any]]:
    users = TaskUserShare.objects.filter(content_object=task).select_related("user", "permission")
    teams = TaskTeamShare.objects.filter(content_object=task).select_related("group__team", "permission")
    return [
        {"id": s.pk, "user": s.user, "team": None, "permission": PERMISSION_LEVELS[s.permission.codename]}
        for s in users
    ] + [
        {"id": s.pk, "user": None, "team": s.group.team, "permission": PERMISSION_LEVELS[s.permission.codename]}
        for s in teams
    ]


# -- runs ----------------------------------------------------------------------------------------------------------


def log(run: Run, message: str, level: str = RunLogLine.Level.INFO) -> RunLogLine:
    last = run.log_lines.order_by("-seq").values_list("seq", flat=True).first() or 0
    return RunLogLine.objects.create(run=run, seq=last + 1, at=timezone.now(), level=level, message=message[:MAX_TEXT])


def run_task(*, actor: Any, task: Task) -> Run:
    """Queue a run of the task's current steps on the runtime placement picks now (runtimes.placement: the task's
    runtime, else the effective default_runtime, else the platform's default; within the effective
    allowed_runtimes). When none may take it, Conflict ``placement`` (409) and nothing is queued. If what the steps
    name no longer resolves to what the task was saved with, the run is recorded as failed at once with the reason
    (nothing else is used in its place). A queued run wakes the runtime's waiting agents when the commit is done."""
    policy.authorize(actor, "task.run", task)
    problems = references.stale(task, task.steps)
    runtime = place(task)
    with transaction.atomic():
        run = Run.objects.create(
            task=task, requested_by=user_or_none(actor), steps=task.steps, runtime=runtime,
            runtime_name=runtime.name, sovereign=runtime.sovereign,
        )  # fmt: skip
        who = actor.get_username() if user_or_none(actor) else "system"
        log(run, f"Queued by {who} with {len(task.steps)} step(s).")
        changes: dict[str, Any] = {"task": task.name, "runtime": runtime.name}
        if problems:
            run.status, run.finished_at, run.error = Run.Status.FAILED, timezone.now(), " ".join(problems)
            run.save(update_fields=["status", "finished_at", "error"])
            for problem in problems:
                log(run, problem, RunLogLine.Level.ERROR)
            changes["failed"] = "references changed since the task was saved"
        audit.record(
            actor=actor, action="run.create", tenant=task.project.org.tenant_id, org=task.project.org, target=run,
            changes=changes,
        )  # fmt: skip
        if run.status == Run.Status.QUEUED:
            wakeup.wake(runtime.pk)
    return run


def stop_run(*, actor: Any, run: Run) -> Run:
    """A queued run stops at once; a claimed or running one is asked to stop (its runtime confirms, or the reaper
    declares it lost). Finished: 409."""
    policy.authorize(actor, "task.run", run)
    with transaction.atomic():
        # Two stops, or a stop and the runtime's finish, are serialized on the run's row: the second one sees the
        # first one's status. Authorization is decided again on that fresh row.
        run = Run.objects.select_for_update(of=("self",)).select_related("task__project__org").get(pk=run.pk)
        policy.authorize(actor, "task.run", run)
        who = actor.get_username() if user_or_none(actor) else "system"
        if run.status == Run.Status.QUEUED:
            run.status, run.finished_at = Run.Status.STOPPED, timezone.now()
            log(run, f"Stopped by {who} before it started.")
        elif run.status in (Run.Status.CLAIMED, Run.Status.RUNNING):
            run.status = Run.Status.STOP_REQUESTED
            log(run, f"Stop requested by {who}.")
        elif run.status == Run.Status.STOP_REQUESTED:
            raise Conflict("A stop was requested already.", code="stop_requested")
        else:
            raise Conflict(f"The run is {run.get_status_display()}: there is nothing to stop.", code="run_finished")
        run.stopped_by = user_or_none(actor)
        run.save(update_fields=["status", "finished_at", "stopped_by"])
        audit.record(
            actor=actor, action="run.stop", tenant=run.task.project.org.tenant_id, org=run.task.project.org,
            target=run, changes={"task": run.task.name, "status": run.status},
        )  # fmt: skip
    return run


def purge_run_logs(now: Any = None) -> int:
    """Delete log lines older than the retention of each run's org (setting run_log_retention_days)."""
    now = now or timezone.now()
    deleted = 0
    org_ids = Run.objects.values_list("task__project__org_id", flat=True).distinct()
    for org in Organization.objects.filter(pk__in=org_ids):
        days = setting_value(org, "run_log_retention_days")
        count, _ = RunLogLine.objects.filter(run__task__project__org=org, at__lt=now - timedelta(days=days)).delete()
        deleted += count
    return deleted
