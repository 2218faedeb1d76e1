"""The resources app's kinds in the registry (config/kinds.py): what the policy, the inheritance engine and the
generic faces need to know about tasks, runs and every declaration. Imported once by ResourcesConfig.ready."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from access.roles import COMPONENT_PUSH
from config.kinds import DevelopmentTeam, Kind, Rule, registry
from resources.models import (
    Component,
    ComponentMember,
    Credential,
    EnvVar,
    LookupTable,
    OrgSetting,
    Run,
    Task,
    TaskTeamShare,
    TaskUserShare,
)


def _org_env_vars(queryset: QuerySet) -> QuerySet:
    """A component's own variables go with the component: they never take part in org inheritance, whatever list
    asks (the ``effective(EnvVar, …)`` trap: each caller used to have to remember this filter)."""
    return queryset.filter(component__isnull=True)


def _component_teams(user: Any) -> QuerySet:
    return ComponentMember.objects.filter(user=user).values_list("component_id", flat=True)


DEVELOPMENT_TEAM = DevelopmentTeam(
    object_ids=_component_teams,
    grants=frozenset({"component.view", COMPONENT_PUSH}),
    exclusive=COMPONENT_PUSH,
    member_reason="You are on the component's development team.",
    exclusive_reason="On the component's development team.",
    refusal="Only the component's development team publishes versions; no role gives it.",
)

TASK = Kind(
    model=Task, rule=Rule.TASK, view="task.view", within="project", label="integration task",
    label_plural="integration tasks", console_list="tasks", console_detail="task", api_list="api-project-tasks",
    api_detail="api-task", shares=(TaskUserShare, TaskTeamShare),
)  # fmt: skip
RUN = Kind(
    model=Run, rule=Rule.CHILD, view="task.view", within="task", label="run", label_plural="runs",
    console_detail="run", api_list="api-task-runs", api_detail="api-run",
)  # fmt: skip
CREDENTIAL = Kind(
    model=Credential, rule=Rule.DECLARED, view="credential.view", manage="credential.manage", within="org",
    label="credential", label_plural="credentials", console_list="credentials", console_detail="credential",
    api_list="api-org-credentials", api_detail="api-credential",
)  # fmt: skip
LOOKUP_TABLE = Kind(
    model=LookupTable, rule=Rule.DECLARED, view="lookup.view", manage="lookup.manage", within="org",
    label="lookup table", label_plural="lookup tables", console_list="lookup-tables", console_detail="lookup-table",
    api_list="api-org-lookup-tables", api_detail="api-lookup-table",
)  # fmt: skip
COMPONENT = Kind(
    model=Component, rule=Rule.DECLARED, view="component.view", manage="component.manage", within="org",
    label="component", label_plural="components", console_list="components", console_detail="component",
    api_list="api-org-components", api_detail="api-component", team=DEVELOPMENT_TEAM,
)  # fmt: skip
ENV_VAR = Kind(
    model=EnvVar, rule=Rule.DECLARED, view="envvar.view", manage="envvar.manage", within="org",
    label="environment variable", label_plural="environment variables", tab="Environment", console_list="env-vars",
    console_detail="env-var", api_list="api-org-env-vars", api_detail="api-env-var", inheritable=_org_env_vars,
    owner="component", owner_team_grants=frozenset({"envvar.view"}),
)  # fmt: skip
ORG_SETTING = Kind(
    model=OrgSetting, rule=Rule.DECLARED, view="org.view", manage="policy.manage", within="org", label="setting",
    label_plural="settings", console_list="org-settings", api_list="api-org-settings", api_detail="api-org-setting",
)  # fmt: skip

registry.register_all([TASK, RUN, CREDENTIAL, LOOKUP_TABLE, COMPONENT, ENV_VAR, ORG_SETTING])
