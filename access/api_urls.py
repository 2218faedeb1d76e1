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
    path("tenants/<str:id>/members", api_members.TenantMembersView.as_view(), name="api-tenant-members"),
    path(
        "tenants/<str:id>/members/<str:user_id>",
        api_members.TenantMemberDetailView.as_view(),
        name="api-tenant-member",
    ),
    path("orgs/<str:id>/members", api_members.OrgMembersView.as_view(), name="api-org-members"),
    path("projects/<str:id>/members", api_members.ProjectMembersView.as_view(), name="api-project-members"),
    path("members/<str:id>", api_members.MemberDetailView.as_view(), name="api-member"),
    path("orgs/<str:id>/teams", api_members.OrgTeamsView.as_view(), name="api-org-teams"),
    path("teams/<str:id>", api_members.TeamDetailView.as_view(), name="api-team"),
    path("teams/<str:id>/members", api_members.TeamMembersView.as_view(), name="api-team-members"),
    path("teams/<str:id>/members/<str:user_id>", api_members.TeamMemberDetailView.as_view(), name="api-team-member"),
    path("orgs/<str:id>/roles", api_members.OrgRolesView.as_view(), name="api-org-roles"),
    path("roles/<str:id>", api_members.RoleDetailView.as_view(), name="api-role"),
    path("orgs/<str:id>/invitations", api_members.OrgInvitationsView.as_view(), name="api-org-invitations"),
    path("invitations/accept", api_members.InvitationAcceptView.as_view(), name="api-invitation-accept"),
    path("invitations/<uuid:id>", api_members.InvitationDetailView.as_view(), name="api-invitation"),
    path(
        "invitations/<str:token>/accept",
        api_members.InvitationAcceptByPathView.as_view(),
        name="api-invitation-accept-by-path",
    ),
    path("orgs/<str:id>/explain", api_members.ExplainView.as_view(), name="api-org-explain"),
    path("orgs/<str:id>/audit-events", api_members.AuditEventsView.as_view(), name="api-org-audit"),
]
