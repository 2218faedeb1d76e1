"""The orgs app's kinds in the registry (config/kinds.py): tenants, organizations and projects, each decided by its
own rule family in access/policy.py. Imported once by OrgsConfig.ready."""

from __future__ import annotations

from access.roles import TENANT_ADMIN
from config.kinds import Kind, Rule, registry
from orgs.models import Organization, Project, Tenant

TENANT = Kind(model=Tenant, rule=Rule.TENANT, view=TENANT_ADMIN, manage=TENANT_ADMIN, label="tenant",
              label_plural="tenants", api_list="api-tenants", api_detail="api-tenant")  # fmt: skip
ORGANIZATION = Kind(
    model=Organization, rule=Rule.ORG, view="org.view", manage="org.manage", label="organization",
    label_plural="organizations", console_detail="org", api_list="api-orgs", api_detail="api-org",
)  # fmt: skip
PROJECT = Kind(
    model=Project, rule=Rule.PROJECT, view="project.view", manage="project.manage", within="org", label="project",
    label_plural="projects", console_detail="project", api_list="api-org-projects", api_detail="api-project",
)  # fmt: skip

registry.register_all([TENANT, ORGANIZATION, PROJECT])
