from django.urls import path

from access import api, api_members

urlpatterns = [
    path("auth/token", api.TokenView.as_view(), name="api-auth-token"),
    path("auth/tokens", api.TokenListView.as_view(), name="api-auth-tokens"),
    path("auth/tokens/<id:id>", api.TokenDetailView.as_view(), name="api-auth-token-detail"),
    path("signup", api.SignUpView.as_view(), name="api-signup"),
    path("me", api.MeView.as_view(), name="api-me"),
    path("me/password", api.MePasswordView.as_view(), name="api-me-password"),
    path("me/verify-email", api.MeVerifyEmailView.as_view(), name="api-me-verify-email"),
    path("auth/verify-email", api.VerifyEmailView.as_view(), name="api-auth-verify-email"),
    path("auth/password-reset", api.PasswordResetView.as_view(), name="api-auth-password-reset"),
    path("auth/password-reset/confirm", api.PasswordResetConfirmView.as_view(), name="api-auth-password-reset-confirm"),
    path("tenants/<id:id>/members", api_members.TenantMembersView.as_view(), name="api-tenant-members"),
    path(
        "tenants/<id:id>/members/<id:user_id>",
        api_members.TenantMemberDetailView.as_view(),
        name="api-tenant-member",
    ),
    path("orgs/<id:id>/members", api_members.OrgMembersView.as_view(), name="api-org-members"),
    path("projects/<id:id>/members", api_members.ProjectMembersView.as_view(), name="api-project-members"),
    path("members/<id:id>", api_members.MemberDetailView.as_view(), name="api-member"),
    path("orgs/<id:id>/teams", api_members.OrgTeamsView.as_view(), name="api-org-teams"),
    path("teams/<id:id>", api_members.TeamDetailView.as_view(), name="api-team"),
    path("teams/<id:id>/members", api_members.TeamMembersView.as_view(), name="api-team-members"),
    path("teams/<id:id>/members/<id:user_id>", api_members.TeamMemberDetailView.as_view(), name="api-team-member"),
    # The first form named the user by username too: kept for existing callers, left out of the schema.
    path(
        "teams/<id:id>/members/<str:user_id>",
        api_members.TeamMemberByUsernameView.as_view(),
        name="api-team-member-by-username",
    ),
    path("orgs/<id:id>/roles", api_members.OrgRolesView.as_view(), name="api-org-roles"),
    path("roles/<id:id>", api_members.RoleDetailView.as_view(), name="api-role"),
    path("orgs/<id:id>/invitations", api_members.OrgInvitationsView.as_view(), name="api-org-invitations"),
    path("invitations/accept", api_members.InvitationAcceptView.as_view(), name="api-invitation-accept"),
    path("invitations/<id:id>", api_members.InvitationDetailView.as_view(), name="api-invitation"),
    path(
        "invitations/<str:token>/accept",
        api_members.InvitationAcceptByPathView.as_view(),
        name="api-invitation-accept-by-path",
    ),
    path("orgs/<id:id>/explain", api_members.ExplainView.as_view(), name="api-org-explain"),
    path("orgs/<id:id>/audit-events", api_members.AuditEventsView.as_view(), name="api-org-audit"),
]
