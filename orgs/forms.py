"""Console forms for organizations and projects.

They check only the shape of the input (edit forms also carry the version they were opened at: config.console);
every rule (names unique among siblings, cycles, plan limits, permissions)
lives in orgs.services, which the views call and whose refusals they show on these forms.
"""

from __future__ import annotations

from typing import Any

from django import forms

from config.console import EditForm
from orgs.models import Organization


class OrgForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class OrgEditForm(OrgForm, EditForm):
    access_inheritance = forms.ChoiceField(
        choices=Organization.AccessInheritance.choices,
        label="Access from parent organizations",
        help_text="Which grants from parent organizations apply here. Tenant administrators always keep access.",
    )

    def __init__(self, *args: Any, org: Organization, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if org.is_root:
            # The root has nothing above it to inherit from: the service refuses a change, so do not offer one.
            del self.fields["access_inheritance"]


class MoveForm(EditForm):
    parent = forms.ModelChoiceField(queryset=Organization.objects.none(), label="New parent")

    def __init__(self, *args: Any, org: Organization, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Every live org of the tenant outside the moved subtree (one query, indented by level); the service checks
        # again under the tree lock, so a parent that became a descendant meanwhile is still refused.
        self.fields["parent"].queryset = (
            Organization.objects.alive()
            .filter(tenant_id=org.tenant_id)
            .exclude(org.descendants_q())
            .order_by("tree_id", "lft")
        )
        self.fields["parent"].label_from_instance = lambda o: f"{'— ' * o.level}{o.name}"


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class ProjectEditForm(ProjectForm, EditForm):
    """A project's edit form: ProjectForm with the version the project had when the form was opened."""
