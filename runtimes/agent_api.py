"""The agent API (docs/API.md "Runtime agents"), under /api/v1/runtime-agent/: what an agent process calls, with its
own token (runtimes.authentication), never a user's. Every write is runtimes.queue's; these views check shapes and
translate. Errors are ``{"detail", "code"}`` (the shared ``Error`` schema): 401 ``token_invalid``, 400
``enrollment_token_invalid``, 404 for a run of another runtime (or an id that is no UUID), 409 ``lease_lost`` and
``seq_gap`` (``SeqGap``: an Error with ``next_seq``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.error_codes import ERROR_CODE_CHOICES
from config.errors import NotFound
from config.schema import ORG_REF, AutoSchema, ErrorSerializer
from resources.api import StepResultSerializer as RunStepResultSerializer
from resources.models import Credential, Run, RunLogLine
from resources.services.tasks import STEP_KEYS
from runtimes import queue
from runtimes.authentication import AgentTokenAuthentication, IsAgent, principal_of
from runtimes.models import Runtime
from workload import services as workload_services

TAG = ["runtime-agent"]


# The choice sets of the protocol, each an enum named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]
# (ClaimedRunStatus, FinishStatus, StepStatus; a runtime's kind is RuntimeKind).
CLAIMED_STATUSES = [Run.Status.CLAIMED.value, Run.Status.RUNNING.value]


class AgentView(APIView):
    """An agent-only operation: the agent token authentication alone (no session, so no CSRF), no user."""

    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]


# -- enrollment and tokens -----------------------------------------------------------------------------------------


class EnrollInstanceSerializer(serializers.Serializer):
    """The enrolling agent process (component ``EnrollInstanceRequest``; ``Instance`` is a runtime's process as the
    runtimes API lists it)."""

    id = serializers.UUIDField(help_text="The agent process's own id, kept in its state directory.")
    hostname = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    version = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")


class EnrollSerializer(serializers.Serializer):
    enrollment_token = serializers.CharField(max_length=200, help_text="The one-time token (cne_…).")
    instance = EnrollInstanceSerializer()


class RuntimeRefSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(
        choices=Runtime.Kind.choices, help_text="global (run by the platform) or local (run by the customer)."
    )

    class Meta:
        model = Runtime
        fields = ["id", "name", "kind", "sovereign", "allow_private_network"]
        read_only_fields = fields


class EnrolledSerializer(serializers.Serializer):
    runtime = RuntimeRefSerializer()
    instance = serializers.UUIDField()
    token = serializers.CharField(help_text="The agent's own token (cna_…): shown once, stored hashed.")
    expires_at = serializers.DateTimeField()
    heartbeat_s = serializers.IntegerField()
    lease_s = serializers.IntegerField()


class EnrollView(APIView):
    """Exchange a one-time enrollment token for the agent's own token. No other authentication: the enrollment
    token is the credential, single use (two agents racing with one: one wins). 400: an Error
    ``enrollment_token_invalid`` (unknown, expired or used: one answer for the three) or ``instance_taken``, or
    field errors."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        tags=TAG,
        request=EnrollSerializer,
        responses={201: EnrolledSerializer},
    )
    def post(self, request: Request) -> Response:
        data = EnrollSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        instance = data.validated_data["instance"]
        enrolled = queue.enroll(
            enrollment_token=data.validated_data["enrollment_token"],
            instance_id=instance["id"],
            hostname=instance["hostname"],
            version=instance["version"],
        )
        body = {
            "runtime": enrolled.runtime,
            "instance": enrolled.instance.pk,
            "token": enrolled.raw_token,
            "expires_at": enrolled.token.expires_at,
            "heartbeat_s": settings.RUNTIME_HEARTBEAT_S,
            "lease_s": settings.RUNTIME_LEASE_S,
        }
        return Response(EnrolledSerializer(body).data, status=status.HTTP_201_CREATED)


class EmptySerializer(serializers.Serializer):
    pass


class RotatedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The new token: the old one keeps working 60 s more.")
    expires_at = serializers.DateTimeField()


class RotateView(AgentView):
    """A new token for the calling agent; the token it called with expires 60 s later."""

    @extend_schema(tags=TAG, request=EmptySerializer, responses={200: RotatedSerializer})
    def post(self, request: Request) -> Response:
        token, raw = queue.rotate(principal=principal_of(request))
        return Response(RotatedSerializer({"token": raw, "expires_at": token.expires_at}).data)


# -- heartbeat and claim -------------------------------------------------------------------------------------------


class RunLeaseSerializer(serializers.Serializer):
    run = serializers.UUIDField()
    lease = serializers.CharField(max_length=64)


class HeartbeatSerializer(serializers.Serializer):
    instance = serializers.UUIDField(required=False, help_text="The calling agent's instance id (its token's).")
    running = serializers.ListField(child=RunLeaseSerializer(), required=False, max_length=200, default=list)


class BeatSerializer(serializers.Serializer):
    cancel = serializers.ListField(child=serializers.UUIDField(), help_text="Runs whose stop was requested.")
    lost = serializers.ListField(child=serializers.UUIDField(), help_text="Runs no longer yours: drop them.")
    next_heartbeat_s = serializers.IntegerField()
    paused = serializers.BooleanField(help_text="The runtime is paused: claims take nothing.")


class HeartbeatView(AgentView):
    """The agent is alive: renews the leases of the runs it lists, answers which to cancel and which are lost."""

    @extend_schema(tags=TAG, request=HeartbeatSerializer, responses={200: BeatSerializer})
    def post(self, request: Request) -> Response:
        data = HeartbeatSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        beat = queue.heartbeat(
            principal=principal_of(request),
            running=[(item["run"], item["lease"]) for item in data.validated_data["running"]],
            instance_id=data.validated_data.get("instance"),
        )
        body = {
            "cancel": beat.cancel,
            "lost": beat.lost,
            "next_heartbeat_s": settings.RUNTIME_HEARTBEAT_S,
            "paused": beat.paused,
        }
        return Response(BeatSerializer(body).data)


class ClaimSerializer(serializers.Serializer):
    instance = serializers.UUIDField(required=False, help_text="The calling agent's instance id (its token's).")
    max = serializers.IntegerField(min_value=1, max_value=queue.MAX_CLAIM, default=1)
    wait_s = serializers.FloatField(min_value=0, max_value=30, default=0, help_text="Long poll: seconds to wait.")
    start = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Start the claimed runs too: they are running at once (started_at set), no start call needed.",
    )


class TaskRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


# -- the claimed run's steps and context, documented (the answer passes them through as built: runtimes.context)

STEP = {
    "type": "object",
    "description": "A step as the task saved it (Task.steps): ``type`` and the fields of that type (an http "
    "step's method, url, headers, body, credential, identity, into; a lookup's table, key, default; a transform's "
    "expression; a log's message, level), each with an optional ``name``.",
    "properties": {
        "type": {"type": "string", "enum": list(STEP_KEYS), "description": "The step's type."},
        "name": {"type": "string"},
    },
    "required": ["type"],
    "additionalProperties": True,
}


@extend_schema_field({"type": "array", "items": STEP})
class StepsField(serializers.ListField):
    child = serializers.DictField()


ORG_SUMMARY = {
    "type": "object",
    "properties": {"id": ORG_REF, "name": {"type": "string"}},
    "required": ["id", "name"],
    "description": "The org of the task's project.",
}


@extend_schema_serializer(component_name="ClaimContextRun")
class ContextRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    attempt = serializers.IntegerField()


@extend_schema_serializer(component_name="ClaimCredential")
class ContextCredentialSerializer(serializers.Serializer):
    """A credential a step names, with its secret unless it is kept on the runtime."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # Declared here: class attributes named "source" and "fields" would shadow the serializer's own.
        return {
            "kind": serializers.ChoiceField(choices=Credential.Kind.choices),
            "source": serializers.ChoiceField(choices=Credential.Source.choices),
            "fields": serializers.DictField(child=serializers.CharField(), help_text="Its non-secret fields."),
            "secret": serializers.DictField(
                child=serializers.CharField(),
                required=False,
                help_text="Its secret fields, decrypted; absent for source runtime (the agent reads them itself).",
            ),
        }


@extend_schema_serializer(component_name="ClaimContext")
class ContextSerializer(serializers.Serializer):
    """What the run's steps name, and nothing else (runtimes.context)."""

    task = TaskRefSerializer()
    org = serializers.SerializerMethodField()
    run = ContextRunSerializer()
    credentials = serializers.DictField(child=ContextCredentialSerializer(), help_text="By the name steps use.")
    lookup_tables = serializers.DictField(
        child=serializers.DictField(child=serializers.CharField()), help_text="By name: {key: value}."
    )
    env = serializers.DictField(child=serializers.CharField(), help_text="The environment variables steps name.")

    @extend_schema_field(ORG_SUMMARY)
    def get_org(self, context: dict[str, Any]) -> dict[str, Any]:
        return dict(context["org"])


@extend_schema_field(ContextSerializer)
class ContextField(serializers.DictField):
    """The claim's context as runtimes.context built it (documented by ContextSerializer)."""


class ClaimedRuntimeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Runtime.Kind.choices, help_text="global or local.")
    allow_private_network = serializers.BooleanField(
        help_text="Whether http steps may reach private, loopback and link-local addresses (always, on a local one)."
    )


class ClaimedRunSerializer(serializers.Serializer):
    """One claimed run. ``runtime`` is the runtime as it is at the claim (a change of ``allow_private_network``
    reaches agents at their next claim, not only at enrollment)."""

    id = serializers.UUIDField(source="run.pk")
    task = TaskRefSerializer(source="run.task")
    attempt = serializers.IntegerField(source="run.attempt")
    lease = serializers.CharField(source="run.lease", help_text="The claim's fencing token: present it every call.")
    lease_expires_at = serializers.DateTimeField(source="run.lease_expires_at")
    sovereign = serializers.BooleanField(source="run.sovereign")
    steps = StepsField(source="run.steps")
    status = serializers.ChoiceField(
        choices=CLAIMED_STATUSES,
        help_text="running when the claim asked to start the run, else claimed (call start).",
        source="run.status",
    )
    runtime = ClaimedRuntimeSerializer()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # Declared here: a class attribute named "context" would shadow the serializer's own context.
        fields["context"] = ContextField()
        return fields


class ClaimedSerializer(serializers.Serializer):
    runs = ClaimedRunSerializer(many=True)


class ClaimView(AgentView):
    """Up to ``max`` queued runs of the agent's runtime, oldest first, each with a lease and its context; waits up
    to ``wait_s`` seconds when none is queued (204 when none came). A paused runtime claims nothing."""

    @extend_schema(
        tags=TAG,
        request=ClaimSerializer,
        responses={200: ClaimedSerializer, 204: OpenApiResponse(description="No run came within wait_s.")},
    )
    def post(self, request: Request) -> Response:
        data = ClaimSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claimed = queue.claim(
            principal=principal_of(request),
            max_runs=data.validated_data["max"],
            wait_s=data.validated_data["wait_s"],
            instance_id=data.validated_data.get("instance"),
            start=data.validated_data["start"],
        )
        if not claimed:
            return Response(status=status.HTTP_204_NO_CONTENT)
        runtime = Runtime.objects.only("kind", "allow_private_network").get(pk=principal_of(request).runtime.pk)
        runs = [{"run": item.run, "context": item.context, "runtime": runtime} for item in claimed]
        return Response(ClaimedSerializer({"runs": runs}).data)


# -- a claimed run -------------------------------------------------------------------------------------------------


def run_id(id: Any) -> Any:
    try:
        return serializers.UUIDField().to_internal_value(id)
    except serializers.ValidationError:
        raise NotFound("No such run on this runtime.") from None


class LeaseSerializer(serializers.Serializer):
    lease = serializers.CharField(max_length=64)


class StartedSerializer(serializers.Serializer):
    cancel = serializers.BooleanField(help_text="A stop was requested: stop and finish as stopped.")


LEASE_LOST = OpenApiResponse(ErrorSerializer, description="lease_lost: the lease is no longer the run's.")


class StartView(AgentView):
    """The agent starts executing the run: ``claimed`` → ``running``."""

    @extend_schema(tags=TAG, request=LeaseSerializer, responses={200: StartedSerializer, 409: LEASE_LOST})
    def post(self, request: Request, id: Any) -> Response:
        data = LeaseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cancel = queue.start(principal=principal_of(request), run_id=run_id(id), lease=data.validated_data["lease"])
        return Response(StartedSerializer({"cancel": cancel}).data)


@extend_schema_serializer(component_name="AgentLogLine")
class LogLineSerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, max_value=2_000_000_000)
    at = serializers.DateTimeField()
    level = serializers.ChoiceField(choices=RunLogLine.Level.choices, default=RunLogLine.Level.INFO)
    message = serializers.CharField(allow_blank=True, max_length=queue.MAX_TEXT, trim_whitespace=False)


class LogsSerializer(serializers.Serializer):
    lease = serializers.CharField(max_length=64)
    lines = serializers.ListField(child=LogLineSerializer(), max_length=10_000)


class LogsAcceptedSerializer(serializers.Serializer):
    next_seq = serializers.IntegerField(help_text="The next seq the server expects for this attempt.")
    cancel = serializers.BooleanField()


@extend_schema_serializer(component_name="SeqGap")
class SeqGapSerializer(serializers.Serializer):
    """An Error (``detail``, ``code``) that may say where to resume: ``seq_gap`` with ``next_seq``."""

    detail = serializers.CharField(help_text="What went wrong, in a sentence for people (it may change).")
    code = serializers.ChoiceField(choices=ERROR_CODE_CHOICES, help_text="seq_gap or lease_lost.")
    next_seq = serializers.IntegerField(required=False, help_text="seq_gap: send from this seq.")


class SeqGapSchema(AutoSchema):
    """The 409 of the calls that take log lines: the shared ``SeqGap`` response (``SeqGap`` body), one component
    for both operations."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        body = self.resolve_serializer(SeqGapSerializer, "response").ref
        component = ResolvedComponent(
            name="SeqGap",
            type=ResolvedComponent.RESPONSE,
            object="SeqGap",
            schema={
                "description": "seq_gap: the first line's seq is past next_seq (send from next_seq; nothing was "
                "stored); or lease_lost: the lease is no longer the run's (drop the run).",
                "content": {"application/json": {"schema": body}},
            },
        )
        self.registry.register_on_missing(component)
        operation["responses"]["409"] = component.ref
        return operation


class LogsView(AgentView):
    """A batch of the run's log lines: a repeat is ignored, a gap refused with the next expected seq."""

    schema = SeqGapSchema()

    @extend_schema(
        tags=TAG,
        request=LogsSerializer,
        responses={200: LogsAcceptedSerializer},
    )
    def post(self, request: Request, id: Any) -> Response:
        data = LogsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        next_seq, cancel = queue.append_logs(
            principal=principal_of(request),
            run_id=run_id(id),
            lease=data.validated_data["lease"],
            lines=[queue.LogLine(**line) for line in data.validated_data["lines"]],
        )
        return Response(LogsAcceptedSerializer({"next_seq": next_seq, "cancel": cancel}).data)


@extend_schema_serializer(component_name="AgentStepResult")
class StepResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, max_value=1000)
    status = serializers.ChoiceField(choices=list(queue.STEP_STATUSES))
    ms = serializers.IntegerField(min_value=0, max_value=10**10)
    error = serializers.CharField(required=False, allow_blank=True, default="", max_length=queue.MAX_TEXT)


class FinishSerializer(serializers.Serializer):
    lease = serializers.CharField(max_length=64)
    status = serializers.ChoiceField(
        choices=[s.value for s in queue.FINISH_STATUSES], help_text="A run whose stop was requested finishes stopped."
    )
    error = serializers.CharField(required=False, allow_blank=True, default="", max_length=queue.MAX_TEXT)
    steps = serializers.ListField(child=StepResultSerializer(), required=False, default=list, max_length=1000)
    log_location = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=500, help_text="Where the agent keeps the log."
    )
    lines = serializers.ListField(
        child=LogLineSerializer(),
        required=False,
        default=list,
        max_length=10_000,
        help_text="The last log batch, stored before finishing as the logs call would (a gap: 409 seq_gap, "
        "nothing finished).",
    )


@extend_schema_field(RunStepResultSerializer(many=True))
class StepResultsField(serializers.ListField):
    """The run's step results as stored (runtimes.queue.finish), documented like the run's in the runs API."""

    child = serializers.DictField()


class RunSummarySerializer(serializers.ModelSerializer):
    task = serializers.UUIDField(source="task_id")
    step_results = StepResultsField(read_only=True)

    class Meta:
        model = Run
        fields = ["id", "task", "status", "attempt", "error", "started_at", "finished_at", "step_results"]
        read_only_fields = fields


class FinishView(AgentView):
    """The run's result. A run whose stop was requested finishes stopped; a sovereign run keeps metadata only."""

    schema = SeqGapSchema()

    @extend_schema(
        tags=TAG,
        request=FinishSerializer,
        responses={200: RunSummarySerializer},
    )
    def post(self, request: Request, id: Any) -> Response:
        data = FinishSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run = queue.finish(
            principal=principal_of(request),
            run_id=run_id(id),
            lease=values["lease"],
            status=values["status"],
            error=values["error"],
            steps=[queue.StepResult(**step) for step in values["steps"]],
            log_location=values["log_location"],
            lines=[queue.LogLine(**line) for line in values["lines"]],
        )
        return Response(RunSummarySerializer(run).data)


# -- workload identity ---------------------------------------------------------------------------------------------


class IdentityTokenIssueSerializer(serializers.Serializer):
    """The body asking for a workload identity token (component ``IdentityTokenIssueRequest``)."""

    lease = serializers.CharField(max_length=64)
    audience = serializers.CharField(
        max_length=255,
        help_text="Who the token is for (its aud): one an http step of the run declares in identity.audience; "
        "no whitespace.",
    )


class IdentityTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="A JWT signed by Canopy's issuer (GET /.well-known/jwks.json).")
    expires_at = serializers.DateTimeField()


class IdentityTokenView(AgentView):
    """A workload identity token for the run (README "Workload identity"): only for the agent whose runtime holds
    the run's current lease, while the run is claimed or running, for an audience the run's steps declare."""

    @extend_schema(
        tags=TAG,
        request=IdentityTokenIssueSerializer,
        responses={
            200: IdentityTokenSerializer,
            403: OpenApiResponse(ErrorSerializer, description="audience_not_declared: no step names it."),
            409: OpenApiResponse(
                ErrorSerializer, description="lease_lost; run_stopping; rotating (a key rotation raced: try again)."
            ),
            429: OpenApiResponse(
                ErrorSerializer, description="identity_token_limit: the run had its tokens (do not retry)."
            ),
            503: OpenApiResponse(
                ErrorSerializer, description="identity_not_configured: Canopy has no signing key yet."
            ),
        },
    )
    def post(self, request: Request, id: Any) -> Response:
        data = IdentityTokenIssueSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = workload_services.issue_token(
            runtime_id=principal_of(request).runtime.pk,
            run_id=run_id(id),
            lease=data.validated_data["lease"],
            audience=data.validated_data["audience"],
        )
        body = {"token": issued.token, "expires_at": issued.expires_at}
        response = Response(IdentityTokenSerializer(body).data)
        response["Cache-Control"] = "no-store"
        return response
