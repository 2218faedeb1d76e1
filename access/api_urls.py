from django.urls import path

from access import api, api_members

urlpatterns = [
    path("auth/token", api.TokenView.as_view(), name="api-auth-token"),
    path("auth/tokens", api.TokenListView.as_view(), name="api-auth-tokens"),
    path("auth/tokens/<uuid:id>", api.TokenDetailView.as_view(), name="api-auth-token-detail"),
    path("signup", api.SignUpView.as_view(), name="api-signup"),
    path("me", api.MeView.as_view(), name="api-me"),
    path("me/password", api.MePasswordView.as_view(), name="api-me-password"),
    path("me/verify-email", api.MeVerifyEmailView.as_view(), name="api-me-verify-email"),
    path("auth/verify-email", api.VerifyEmailView.as_view(), name="api-auth-verify-email"),
    path("auth/password-reset", api.PasswordResetView.as_view(), name="api-auth-password-reset"),
    path("auth/password-reset/confirm", api.PasswordResetConfirmView.as_view(), name="api-auth-password-reset-confirm"),
    path("tenants/<uuid:id>/members", api_members.TenantMembersView.as_view(), name="api-tenant-members"),
    path(
        "tenants/<uuid:id>/members/<uuid:user_id>",
        api_members.TenantMemberDetailView.as_view(),
        name="api-tenant-member",
    ),
    path("orgs/<uuid:id>/members", api_members.OrgMembersView.as_view(), name="api-org-members"),
    path("projects/<uuid:id>/members", api_members.ProjectMembersView.as_view(), name="api-project-members"),
    path("members/<uuid:id>", api_members.MemberDetailView.as_view(), name="api-member"),
    path("orgs/<uuid:id>/teams", api_members.OrgTeamsView.as_view(), name="api-org-teams"),
    path("teams/<uuid:id>", api_members.TeamDetailView.as_view(), name="api-team"),
    path("teams/<uuid:id>/members", api_members.TeamMembersView.as_view(), name="api-team-members"),
    path("teams/<uuid:id>/members/<uuid:user_id>", api_members.TeamMemberDetailView.as_view(), name="api-team-member"),
    # The first form named the user by username too: kept for existing callers, left out of the schema.
    path(
        "teams/<uuid:id>/members/<str:user_id>",
        api_members.TeamMemberByUsernameView.as_view(),
        name="api-team-member-by-username",
    ),
    path("orgs/<uuid:id>/roles", api_members.OrgRolesView.as_view(), name="api-org-roles"),
    path("roles/<uuid:id>", api_members.RoleDetailView.as_view(), name="api-role"),
    path("orgs/<uuid:id>/invitations", api_members.OrgInvitationsView.as_view(), name="api-org-invitations"),
    path("invitations/accept", api_members.InvitationAcceptView.as_view(), name="api-invitation-accept"),
    path("invitations/<uuid:id>", api_members.InvitationDetailView.as_view(), name="api-invitation"),
    path(
        "invitations/<str:token>/accept",
        api_members.InvitationAcceptByPathView.as_view(),
        name="api-invitation-accept-by-path",
    ),
    path("orgs/<uuid:id>/explain", api_members.ExplainView.as_view(), name="api-org-explain"),
    path("orgs/<uuid:id>/audit-events", api_members.AuditEventsView.as_view(), name="api-org-audit"),
]
