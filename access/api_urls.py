from django.urls import path

from access import api

urlpatterns = [
    path("auth/token", api.TokenView.as_view(), name="api-auth-token"),
    path("auth/tokens", api.TokenListView.as_view(), name="api-auth-tokens"),
    path("auth/tokens/<uuid:id>", api.TokenDetailView.as_view(), name="api-auth-token-detail"),
    path("signup", api.SignUpView.as_view(), name="api-signup"),
    path("me", api.MeView.as_view(), name="api-me"),
]
