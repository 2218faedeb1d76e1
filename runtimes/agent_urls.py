"""/api/v1/runtime-agent/: the agent API (runtimes.agent_api), for agent processes only."""

from django.urls import path

from runtimes import agent_api

urlpatterns = [
    path("enroll", agent_api.EnrollView.as_view(), name="api-agent-enroll"),
    path("token/rotate", agent_api.RotateView.as_view(), name="api-agent-token-rotate"),
    path("heartbeat", agent_api.HeartbeatView.as_view(), name="api-agent-heartbeat"),
    path("claim", agent_api.ClaimView.as_view(), name="api-agent-claim"),
    path("runs/<id:id>/start", agent_api.StartView.as_view(), name="api-agent-run-start"),
    path("runs/<id:id>/logs", agent_api.LogsView.as_view(), name="api-agent-run-logs"),
    path("runs/<id:id>/finish", agent_api.FinishView.as_view(), name="api-agent-run-finish"),
    path("runs/<id:id>/identity-token", agent_api.IdentityTokenView.as_view(), name="api-agent-run-identity-token"),
]
