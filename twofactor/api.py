"""The account's second factors in the API (``/api/v1/me/otp-devices``): the caller's own devices only; anyone
else's device is 404. Secrets appear in the one answer that creates them (the enrollment's ``otpauth://`` URI, key
and QR code; the backup codes), never again."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.ratelimit import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle
from config.schema import AutoSchema
from twofactor import services
from twofactor.models import SealedTOTPDevice


class OtpDeviceSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    name = serializers.CharField(read_only=True)
    confirmed = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)


class OtpDeviceCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=64)


class OtpEnrollmentSerializer(OtpDeviceSerializer):
    otpauth_uri = serializers.CharField(help_text="Shown once: give it to the authenticator app (or its QR code).")
    secret = serializers.CharField(help_text="The same key in base32, to type in by hand. Shown once.")
    qr_svg = serializers.CharField(help_text="The otpauth URI as a QR code (an SVG element). Shown once.")


class OtpCodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40, help_text="A code from the authenticator app (or a backup code).")


class OtpConfirmedSerializer(OtpDeviceSerializer):
    backup_codes = serializers.ListField(
        child=serializers.CharField(),
        help_text="On the account's first confirmation: ten single-use backup codes, shown once (else empty).",
    )


@extend_schema_serializer(component_name="NewBackupCodes")  # not BackupCodes: generated clients clash with its field
class BackupCodesSerializer(serializers.Serializer):
    backup_codes = serializers.ListField(child=serializers.CharField(), help_text="Shown once; the old codes stop.")


def _device(device: SealedTOTPDevice) -> dict[str, Any]:
    return dict(OtpDeviceSerializer(device).data)


class OtpDevicesView(generics.ListAPIView):
    """The caller's authenticator apps (TOTP devices). POST starts enrolling one."""

    serializer_class = OtpDeviceSerializer
    queryset = SealedTOTPDevice.objects.none()  # for the schema; get_queryset() decides
    # The general limits, and the stricter "auth" scope on the methods that check a code (get_throttles).
    throttle_classes = [UserRateThrottle, AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"

    def get_throttles(self) -> list[Any]:
        return _scoped_on(self, "POST")

    def get_queryset(self) -> Any:
        return services.devices_of(self.request.user)

    @extend_schema(request=OtpDeviceCreateSerializer, responses={201: OtpEnrollmentSerializer})
    def post(self, request: Request) -> Response:
        """An unconfirmed device; its ``otpauth_uri``, key and QR code are in this answer only. Confirm it with
        a first code (``/confirm``). A pending enrollment started earlier is dropped."""
        data = OtpDeviceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        enrollment = services.enroll(actor=request.user, name=data.validated_data.get("name", ""))
        body = _device(enrollment.device) | {
            "otpauth_uri": enrollment.uri,
            "secret": enrollment.secret,
            "qr_svg": enrollment.qr_svg,
        }
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class OtpDeviceConfirmView(APIView):
    # The general limits, and the stricter "auth" scope on the methods that check a code (get_throttles).
    throttle_classes = [UserRateThrottle, AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=OtpCodeSerializer, responses={200: OtpConfirmedSerializer})
    def post(self, request: Request, id: Any) -> Response:
        """Confirm the device with the code the app shows now. The account's first confirmation answers ten
        backup codes, once."""
        device = services.own_device(request.user, id)
        data = OtpCodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        codes = services.confirm(actor=request.user, device=device, code=data.validated_data["code"])
        response = Response(_device(device) | {"backup_codes": codes})
        response["Cache-Control"] = "no-store"
        return response


class OtpRemoveSerializer(serializers.Serializer):
    code = serializers.CharField(
        max_length=40, required=False, allow_blank=True,
        help_text="A current code (app or backup code): required to remove a confirmed device.",
    )  # fmt: skip


class DeleteWithBodySchema(AutoSchema):
    """DELETE /me/otp-devices/{id} reads a body (``{"code"}``): documented, so that generated clients can send it
    (OpenAPI 3.1 allows a DELETE body; drf-spectacular documents bodies of POST, PUT and PATCH only)."""

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        body = self.resolve_serializer(OtpRemoveSerializer, "request").ref
        return {"content": {"application/json": {"schema": body}}, "required": False}


class OtpDeviceDetailView(APIView):
    schema = DeleteWithBodySchema()
    # The general limits, and the stricter "auth" scope on the methods that check a code (get_throttles).
    throttle_classes = [UserRateThrottle, AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"

    def get_throttles(self) -> list[Any]:
        return _scoped_on(self, "DELETE")

    @extend_schema(responses=OtpDeviceSerializer)
    def get(self, request: Request, id: Any) -> Response:
        return Response(_device(services.own_device(request.user, id)))

    @extend_schema(request=OtpRemoveSerializer, responses={204: None})
    def delete(self, request: Request, id: Any) -> Response:
        """Remove the device. A confirmed one takes ``{"code"}``, a current code from the app or a backup code: a
        stolen session cannot silently switch the second factor off. Removing the last one removes the backup
        codes too."""
        device = services.own_device(request.user, id)
        data = OtpRemoveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.remove(actor=request.user, device=device, code=data.validated_data.get("code"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BackupCodesView(APIView):
    # The general limits, and the stricter "auth" scope on the methods that check a code (get_throttles).
    throttle_classes = [UserRateThrottle, AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=OtpCodeSerializer, responses={201: BackupCodesSerializer})
    def post(self, request: Request) -> Response:
        """Ten new backup codes, shown once (the old ones stop working); takes a current code."""
        data = OtpCodeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        codes = services.regenerate_backup_codes(actor=request.user, code=data.validated_data["code"])
        response = Response({"backup_codes": codes}, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


def _scoped_on(view: APIView, method: str) -> list[Any]:
    """The view's throttles, without the "auth" scope for other methods than ``method`` (reads are not code checks:
    only the general limits count them)."""
    throttles = APIView.get_throttles(view)
    if view.request.method == method:
        return throttles
    return [throttle for throttle in throttles if not isinstance(throttle, ScopedRateThrottle)]
