"""API: tokens, sign-up, the caller's own account (e-mail, password), password reset and e-mail verification.

Identity is not tenant property: every write here is the account's own (``/me``) or proves it holds the account's
mailbox (a reset or verification code, sent in the request body, never in a URL)."""

from __future__ import annotations

from typing import Any

from axes.exceptions import AxesBackendPermissionDenied
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import policy
from access.models import AccessToken
from access.services import accounts, issue_token, revoke_token
from config.errors import NotFound
from config.ratelimit import ScopedRateThrottle
from config.schema import ErrorSerializer
from orgs import services as org_services
from orgs.api import OrgSerializer, TenantSerializer
from orgs.models import Tenant
from twofactor import services as twofactor


class UserRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email"]
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    otp = serializers.CharField(
        required=False, allow_blank=True, max_length=40,
        help_text="A current code from the authenticator app (or a backup code): required when the account has "
        "two-factor authentication; the token then reaches organizations that require it.",
    )  # fmt: skip


class TokenCreatedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once: only its hash is stored.")
    expires_at = serializers.DateTimeField()


class AccessTokenSerializer(serializers.ModelSerializer):
    revoked = serializers.SerializerMethodField()

    class Meta:
        model = AccessToken
        fields = ["id", "name", "hint", "created_at", "expires_at", "last_used_at", "revoked"]
        read_only_fields = fields

    def get_revoked(self, token: AccessToken) -> bool:
        return token.revoked_at is not None


class TokenView(APIView):
    """Exchange a username and password for a personal access token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=TokenCreateSerializer,
        responses={
            201: TokenCreatedSerializer,
            401: OpenApiResponse(ErrorSerializer, description="otp_invalid: the second factor's code was refused."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = TokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = authenticate(
                request=request._request,
                username=data.validated_data["username"],
                password=data.validated_data["password"],
            )
        except AxesBackendPermissionDenied:
            user = None
        if getattr(request._request, "axes_locked_out", False):
            return Response(
                {"detail": "Too many failed log-in attempts: try again later.", "code": "locked_out"},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        if user is None or not user.is_active:
            return Response(
                {"non_field_errors": ["Unable to log in with the credentials provided."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        otp_verified = False
        if twofactor.has_device(user):
            # The password alone does not mint a token for an account with a second factor (400 otp_required);
            # a wrong, reused or throttled code is 401 otp_invalid (each device's back-off counts the failure).
            code = data.validated_data.get("otp") or ""
            if not code:
                return Response(
                    {"detail": "This account uses two-factor authentication: send a current code as otp.",
                     "code": "otp_required"},
                    status=status.HTTP_400_BAD_REQUEST,
                )  # fmt: skip
            result = twofactor.check_code(user, code)
            if not result.ok:
                detail = "Too many wrong codes: wait a minute." if result.throttled else "This code is not valid."
                return Response({"detail": detail, "code": "otp_invalid"}, status=status.HTTP_401_UNAUTHORIZED)
            otp_verified = True
        token, raw = issue_token(user=user, name=data.validated_data.get("name", ""), otp_verified=otp_verified)
        return Response({"token": raw, "expires_at": token.expires_at}, status=status.HTTP_201_CREATED)


class TokenListView(generics.ListAPIView):
    """The caller's own personal access tokens (never their values)."""

    serializer_class = AccessTokenSerializer
    queryset = AccessToken.objects.none()  # for the schema; get_queryset() decides

    def get_queryset(self) -> Any:
        return AccessToken.objects.filter(user=self.request.user).order_by("-created_at")


class TokenDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        token = AccessToken.objects.filter(pk=id, user=request.user).first()
        if token is None:
            raise NotFound()
        revoke_token(actor=request.user, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SignUpSerializer(serializers.Serializer):
    tenant_name = serializers.CharField(max_length=200)
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class SignUpResultSerializer(serializers.Serializer):
    user = UserRefSerializer()
    tenant = TenantSerializer()
    org = OrgSerializer(help_text="The tenant's root organization.")


class SignUpView(APIView):
    """Create a user, their tenant (Free plan) and its root organization."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "signup"

    @extend_schema(
        request=SignUpSerializer,
        auth=[],
        responses={
            201: SignUpResultSerializer,
            404: OpenApiResponse(ErrorSerializer, description="Sign-up is disabled on this server."),
        },
    )
    def post(self, request: Request) -> Response:
        if not settings.SIGNUP_ENABLED:
            raise NotFound()
        data = SignUpSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = org_services.sign_up(**data.validated_data)
        context = {"request": request}
        request.user = result.user  # the new org's capabilities are the new user's
        return Response(
            {
                "user": UserRefSerializer(result.user).data,
                "tenant": TenantSerializer(result.tenant, context=context).data,
                "org": OrgSerializer(result.org, context=context).data,
            },
            status=status.HTTP_201_CREATED,
        )


class MeTenantSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    is_admin = serializers.BooleanField()


class MeSerializer(UserRefSerializer):
    email_verified = serializers.BooleanField(read_only=True)
    tenants = serializers.SerializerMethodField()

    class Meta(UserRefSerializer.Meta):
        fields = [*UserRefSerializer.Meta.fields, "email_verified", "tenants"]
        read_only_fields = fields

    @extend_schema_field(MeTenantSerializer(many=True))
    def get_tenants(self, user: Any) -> list[dict[str, Any]]:
        access = policy.access_for(user)
        admin = access.admin_tenant_ids
        tenants = Tenant.objects.filter(pk__in=access.member_tenant_ids).order_by("name")
        return [{"id": t.pk, "name": t.name, "is_admin": t.pk in admin} for t in tenants]


class MeUpdateSerializer(serializers.Serializer):
    email = serializers.EmailField(help_text="A new address: it counts once verified through the link sent there.")
    current_password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        """The caller's account and the tenants it belongs to."""
        return Response(MeSerializer(request.user).data)

    @extend_schema(request=MeUpdateSerializer, responses=MeSerializer)
    def patch(self, request: Request) -> Response:
        """Change the account's e-mail address (with the current password); a verification link is sent there."""
        data = MeUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = accounts.change_email(user=request.user, **data.validated_data)
        return Response(MeSerializer(user).data)


class PasswordChangeSerializer(serializers.Serializer):
    current_password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    new_password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class PasswordChangedSerializer(serializers.Serializer):
    revoked_tokens = serializers.IntegerField(help_text="API tokens that ended, this request's one included.")


class MePasswordView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=PasswordChangeSerializer, responses=PasswordChangedSerializer)
    def post(self, request: Request) -> Response:
        """Set a new password. Every session and API token of the account ends, the one of this request too."""
        data = PasswordChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ended = accounts.change_password(user=request.user, **data.validated_data)
        return Response({"revoked_tokens": ended})


class MeVerifyEmailView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "email"

    @extend_schema(request=None, responses={202: None})
    def post(self, request: Request) -> Response:
        """Send a verification link to the account's address (again)."""
        if request.user.email_verified_at is None and request.user.email:
            accounts.send_email_verification(user=request.user)
        return Response(status=status.HTTP_202_ACCEPTED)


class VerifyEmailSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The code of the e-mailed link (the part after #).")


class VerifiedEmailSerializer(UserRefSerializer):
    """The account whose address was confirmed."""

    email_verified = serializers.BooleanField(read_only=True)

    class Meta(UserRefSerializer.Meta):
        fields = [*UserRefSerializer.Meta.fields, "email_verified"]
        read_only_fields = fields


class VerifyEmailView(APIView):
    """Confirm an address with the code of the link sent there (no authentication: the code proves it)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "email"

    @extend_schema(request=VerifyEmailSerializer, responses=VerifiedEmailSerializer, auth=[])
    def post(self, request: Request) -> Response:
        data = VerifyEmailSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = accounts.verify_email(code=data.validated_data["token"])
        return Response(UserRefSerializer(user).data | {"email_verified": True})


class PasswordResetSerializer(serializers.Serializer):
    email = serializers.EmailField()


class PasswordResetView(APIView):
    """Send a password reset link to the account whose verified address this is. The answer is 202 whether there
    is one or not."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "email"

    @extend_schema(request=PasswordResetSerializer, responses={202: None}, auth=[])
    def post(self, request: Request) -> Response:
        data = PasswordResetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        accounts.request_password_reset(email=data.validated_data["email"])
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The code of the e-mailed link (the part after #).")
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class PasswordResetConfirmView(APIView):
    """Set a new password with a reset code; every session and API token of the account ends."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=PasswordResetConfirmSerializer, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        data = PasswordResetConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        accounts.reset_password(code=data.validated_data["token"], new_password=data.validated_data["password"])
        return Response(status=status.HTTP_204_NO_CONTENT)
