"""Shared resources: integration tasks and their runs (in projects), and the declarations an organization shares
with its subtree (credentials, lookup tables, private components, environment variables, settings).

A *declaration* belongs to one org and is seen in that org and every descendant (resources.inheritance decides
what is effective where): a descendant overrides it by declaring the same name, hides it with a ``Hidden`` row,
and neither is allowed under a ``locked`` declaration. Only access.policy decides who sees or changes what.
Secret values are stored encrypted (resources.crypto) and never leave the services in clear, except to a run.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from access.models import TeamShare, UserShare
from config import kinds
from config.concurrency import Versioned


class Declaration(Versioned):
    """What every inheritable declaration carries. ``NAME_FIELD`` is what overriding matches on (case-insensitive)."""

    NAME_FIELD = "name"
    KIND = ""  # the ``Hidden.kind`` of this model

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    locked = models.BooleanField(
        default=False, help_text="Descendant organizations may neither override nor hide a locked declaration."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def declared_name(self) -> str:
        return getattr(self, self.NAME_FIELD)

    @property
    def tenant_id(self):
        return self.org.tenant_id


def hideable_kinds() -> list[tuple[str, str]]:
    """The choices of ``Hidden.kind``: every registered declared kind with a ``KIND`` (config/kinds.py), read when
    validating, so a new hideable kind (a runtime) needs no change here and no migration of this app."""
    return [(key, kind.label) for key, kind in kinds.registry.hideable().items()]


class Hidden(models.Model):
    """Org ``org`` hides the inherited declaration ``name`` of kind ``kind`` from itself and its subtree."""

    class Kind(models.TextChoices):
        """The hide kinds of this app's declarations, as constants (the field's choices come from the registry)."""

        CREDENTIAL = "credential", "credential"
        LOOKUP_TABLE = "lookup_table", "lookup table"
        ENV_VAR = "env_var", "environment variable"
        COMPONENT = "component", "component"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=hideable_kinds)
    name = models.CharField(max_length=100)  # stored lower-case: matching is case-insensitive
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [models.UniqueConstraint(fields=["org", "kind", "name"], name="hidden_once_per_org")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} hidden"


# -- credentials, lookup tables, components, environment variables, settings ---------------------------------------


class NamedDeclaration(Declaration):
    """A declaration named ``name`` (unique in its org, whatever the case) with a description."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)

    class Meta:
        abstract = True
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), "org", name="%(class)s_name_unique_in_org")]

    def __str__(self) -> str:
        return self.name


class Credential(NamedDeclaration):
    KIND = Hidden.Kind.CREDENTIAL

    class Kind(models.TextChoices):
        HTTP_BASIC = "http_basic", "HTTP basic"
        API_KEY = "api_key", "API key"
        OAUTH2_CLIENT = "oauth2_client", "OAuth 2 client"
        GENERIC = "generic", "Generic"

    class Source(models.TextChoices):
        CANOPY = "canopy", "stored by Canopy (encrypted)"
        RUNTIME = "runtime", "kept on the runtime (Canopy stores no secret)"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # ``runtime``: the secret never reaches Canopy; the agent reads it from its own environment or a local file
    # (CANOPY_SECRET_<NAME>_<FIELD> or <secrets dir>/<name>.json) when a step names the credential.
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CANOPY)
    fields = models.JSONField(default=dict, blank=True)  # non-secret fields, shown to viewers
    secret_names = models.JSONField(default=list, blank=True)  # which secret fields are set (names only)
    secret_ciphertext = models.TextField(blank=True, editable=False)  # MultiFernet token of the secret fields


class LookupTable(NamedDeclaration):
    KIND = Hidden.Kind.LOOKUP_TABLE


class LookupRow(models.Model):
    table = models.ForeignKey(LookupTable, on_delete=models.CASCADE, related_name="rows")
    key = models.CharField(max_length=255)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["table", "key"], name="lookup_row_key_unique")]

    def __str__(self) -> str:
        return f"{self.key} → {self.value}"


class Component(NamedDeclaration):
    """A private component. Publishing versions is for its development team only, never for an org role."""

    KIND = Hidden.Kind.COMPONENT

    repository_url = models.URLField(blank=True, max_length=500)


class ComponentMember(models.Model):
    """A member of a component's development team. Needs no org role: a contractor then sees this component only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    component = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="component_memberships")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["component", "user"], name="component_member_once")]

    def __str__(self) -> str:
        return f"{self.user} on {self.component}"


class ComponentVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    component = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=50)
    source = models.TextField(max_length=200_000)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["component", "version"], name="component_version_once")]

    def __str__(self) -> str:
        return f"{self.component} {self.version}"


class EnvVar(Declaration):
    """An environment variable of an org (inherited by its subtree) or of a component (``component`` set: it goes
    with the component and is not matched against org variables). A secret value is stored encrypted only."""

    NAME_FIELD = "key"
    KIND = Hidden.Kind.ENV_VAR

    component = models.ForeignKey(Component, on_delete=models.CASCADE, null=True, blank=True, related_name="env_vars")
    key = models.CharField(max_length=100)
    value = models.TextField(blank=True, max_length=10_000)  # empty when secret
    secret = models.BooleanField(default=False)
    secret_ciphertext = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(
                "org", "key", condition=models.Q(component__isnull=True), name="env_var_key_unique_in_org"
            ),
            models.UniqueConstraint(
                "component", "key", condition=models.Q(component__isnull=False), name="env_var_key_unique_in_component"
            ),
        ]

    def __str__(self) -> str:
        return self.key


class OrgSetting(Declaration):
    """A value of the typed settings registry (resources.settings_registry) set at an org: overrides the value
    inherited from above, unless an ancestor locked it."""

    NAME_FIELD = "key"

    key = models.CharField(max_length=50)
    value = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["org", "key"], name="org_setting_once_per_org")]

    def __str__(self) -> str:
        return self.key


# -- integration tasks and runs ------------------------------------------------------------------------------------


class Task(Versioned):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("orgs.Project", on_delete=models.CASCADE, related_name="tasks")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    steps = models.JSONField(default=list, blank=True)
    # What the steps' names resolved to when they were saved: {"credential"|"lookup_table": {name: id}}
    # (resources.services.references). A run whose names resolve to something else fails instead.
    bindings = models.JSONField(default=dict, blank=True, editable=False)
    # The runtime that runs it (None: the effective default_runtime setting, else the platform's default).
    runtime = models.ForeignKey(
        "runtimes.Runtime", on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    retry_on_lost = models.BooleanField(
        default=False,
        help_text="Safe to run again: a run whose runtime was lost mid-run is queued once more instead of failing.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), "project", name="task_name_unique_in_project")]
        permissions = [("run_task", "Run and stop the task")]

    def __str__(self) -> str:
        return self.name


class TaskUserShare(UserShare):
    """A task shared with one user: a (user, permission, task) row, the permission being the level: ``view_task``
    (view), ``run_task`` (view and run) or ``change_task`` (view, run and edit)."""

    content_object = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="user_shares")

    class Meta(UserShare.Meta):
        constraints = [models.UniqueConstraint(fields=["user", "content_object"], name="task_user_share_once")]

    def __str__(self) -> str:
        return f"{self.content_object} shared with {self.user}"


class TaskTeamShare(TeamShare):
    content_object = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="team_shares")

    class Meta(TeamShare.Meta):
        constraints = [models.UniqueConstraint(fields=["group", "content_object"], name="task_team_share_once")]

    def __str__(self) -> str:
        return f"{self.content_object} shared with team {self.group}"


class Run(models.Model):
    """One execution of a task. ``queued → claimed → running → succeeded | failed | stopped | lost`` (with
    ``stop_requested`` while a stop travels to the agent). The runtime is fixed when it is queued (placement); a
    claim gives it a lease (``lease``, a secret fencing token, new at every claim) that every agent call presents."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        CLAIMED = "claimed", "claimed"
        RUNNING = "running", "running"
        STOP_REQUESTED = "stop_requested", "stop requested"
        STOPPED = "stopped", "stopped"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        LOST = "lost", "lost"

    ACTIVE = (Status.QUEUED, Status.CLAIMED, Status.RUNNING, Status.STOP_REQUESTED)
    LEASED = (Status.CLAIMED, Status.RUNNING, Status.STOP_REQUESTED)
    FINISHED = (Status.STOPPED, Status.SUCCEEDED, Status.FAILED, Status.LOST)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    steps = models.JSONField(default=list, blank=True)  # the task's steps when it was queued
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Placement and the queue (runtimes.queue)
    runtime = models.ForeignKey(
        "runtimes.Runtime", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    runtime_name = models.CharField(max_length=100, blank=True)  # kept when the runtime is deleted
    sovereign = models.BooleanField(default=False)  # the runtime was sovereign when queued: metadata only
    attempt = models.PositiveSmallIntegerField(default=1)
    instance = models.ForeignKey(
        "runtimes.RuntimeInstance", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    lease = models.CharField(max_length=64, blank=True, editable=False)  # secret fencing token of the current claim
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    step_results = models.JSONField(default=list, blank=True)  # [{"index","status","ms","error"?}]
    log_next_seq = models.PositiveIntegerField(default=1)  # the agent's next log seq for this attempt
    log_location = models.CharField(max_length=500, blank=True)  # sovereign: where the agent keeps the log

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["task", "-created_at"], name="run_task_newest"),
            # The claim's shape: a runtime's queued runs, oldest first (partial: the queue stays small).
            models.Index(fields=["runtime", "created_at"], name="run_queue", condition=models.Q(status="queued")),
            # The reaper's shape: leased runs by lease expiry.
            models.Index(
                fields=["lease_expires_at"],
                name="run_leases",
                condition=models.Q(status__in=["claimed", "running", "stop_requested"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} run {self.created_at:%Y-%m-%d %H:%M:%S} ({self.status})"


class RunLogLine(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "info"
        WARNING = "warning", "warning"
        ERROR = "error", "error"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    at = models.DateTimeField()
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    message = models.TextField(max_length=10_000)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="run_log_line_seq")]

    def __str__(self) -> str:
        return self.message[:80]
