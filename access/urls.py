from django.contrib.auth import views as auth_views
from django.urls import path

from access import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=views.LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<uuid:token_id>/revoke", views.token_revoke, name="token-revoke"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
]
