from django.contrib.auth import views as auth_views
from django.urls import path

from access import org_views, views
from identity import signin

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    # Sign-in discovery: the e-mail first, then the tenant's IdP or the password form (identity.signin).
    path("login/", signin.login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("account/verify-email/", views.email_verify, name="email-verify"),
    path("account/password-reset/", views.password_reset, name="password-reset"),
    path("account/password-reset/confirm/", views.password_reset_confirm, name="password-reset-confirm"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<uuid:token_id>/revoke", views.token_revoke, name="token-revoke"),
    path("invitations/accept/", views.invitation_accept, name="invitation-accept"),
    path("invitations/<str:token>/", views.invitation_legacy_link, name="invitation-legacy-link"),
]

urlpatterns += [
    path("o/<uuid:org_id>/members/", org_views.members, name="org-members"),
    path("o/<uuid:org_id>/people/", org_views.people, name="org-people"),
    path("o/<uuid:org_id>/members/<uuid:grant_id>/role", org_views.member_change, name="org-member-change"),
    path("o/<uuid:org_id>/members/<uuid:grant_id>/remove", org_views.member_remove, name="org-member-remove"),
    path("o/<uuid:org_id>/teams/", org_views.teams, name="org-teams"),
    path("o/<uuid:org_id>/teams/<uuid:team_id>/", org_views.team_action, name="org-team-action"),
    path("o/<uuid:org_id>/teams/<uuid:team_id>/edit/", org_views.team_edit, name="org-team-edit"),
    path("o/<uuid:org_id>/roles/", org_views.roles, name="org-roles"),
    path("o/<uuid:org_id>/roles/<uuid:role_id>/edit/", org_views.role_edit, name="org-role-edit"),
    path("o/<uuid:org_id>/invitations/", org_views.invitations, name="org-invitations"),
    path("o/<uuid:org_id>/explain/", org_views.explain, name="org-explain"),
    path("o/<uuid:org_id>/audit/", org_views.audit, name="org-audit"),
    path("o/<uuid:org_id>/p/<uuid:project_id>/members/", org_views.project_members, name="project-members"),
]
