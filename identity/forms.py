"""Console forms of single sign-on. They check shapes only; identity.services validates the meaning (https issuer,
openid scope, roles and orgs of this tenant) and its field errors come back onto these fields."""

from __future__ import annotations

from typing import Any

from django import forms

from config.console import EditForm
from identity.models import TenantSSO

EXTRA_ROWS = 3
MAX_ROWS = 200


class SSOForm(EditForm):
    """The whole configuration, group mappings included: ``rows`` mapping rows (group, role key, org id), the
    existing ones and a few empty ones to add; an empty group drops its row. The secret is write-only: blank keeps
    the stored one."""

    issuer = forms.CharField(max_length=500, help_text="The IdP's issuer URL, e.g. https://login.example.com.")
    client_id = forms.CharField(max_length=255, label="Client ID")
    client_secret = forms.CharField(
        max_length=2000, required=False, label="Client secret", strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: leave blank to keep the stored secret.",
    )  # fmt: skip
    scopes = forms.CharField(max_length=500, initial="openid email profile", help_text="Space-separated; openid first.")
    groups_claim = forms.CharField(max_length=100, required=False, initial="groups",
                                   help_text="The claim that lists the user's groups.")  # fmt: skip
    default_role = forms.ChoiceField(required=False, help_text="The role new members get when no group maps.")
    default_org = forms.ChoiceField(required=False, help_text="Where the default role is given (empty: the root).")
    remove_unmapped_roles = forms.BooleanField(
        required=False, help_text=TenantSSO._meta.get_field("remove_unmapped_roles").help_text
    )
    rows = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=MAX_ROWS, required=False)

    def __init__(self, *args: Any, roles: list[tuple[str, str]], orgs: list[tuple[str, str]], rows: int = 0,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        if self.is_bound:
            try:
                rows = min(MAX_ROWS, max(0, int(self.data.get("rows") or 0)))
            except (TypeError, ValueError):
                rows = 0
        self.row_count = rows
        role_field, org_field = self.fields["default_role"], self.fields["default_org"]
        assert isinstance(role_field, forms.ChoiceField) and isinstance(org_field, forms.ChoiceField)
        role_field.choices = [("", "— none —"), *roles]
        org_field.choices = [("", "— the root —"), *orgs]
        self.fields["rows"].initial = rows
        for i in range(rows):
            self.fields[f"group_{i}"] = forms.CharField(max_length=200, required=False, label="Group")
            self.fields[f"role_{i}"] = forms.ChoiceField(choices=roles, required=False, label="Role")
            self.fields[f"org_{i}"] = forms.ChoiceField(choices=orgs, required=False, label="At")

    def mapping_rows(self) -> list[tuple[Any, Any, Any]]:
        return [(self[f"group_{i}"], self[f"role_{i}"], self[f"org_{i}"]) for i in range(self.row_count)]

    def main_fields(self) -> list[Any]:
        names = ["issuer", "client_id", "client_secret", "scopes", "groups_claim", "default_role", "default_org",
                 "remove_unmapped_roles"]  # fmt: skip
        return [self[name] for name in names]


class EnforceForm(EditForm):
    confirm = forms.BooleanField(
        required=False, label="I have read the list of members without a linked identity above."
    )


class DomainForm(forms.Form):
    domain = forms.CharField(max_length=253, help_text="An e-mail domain of your company, e.g. example.com.")
