from django.urls import path

from twofactor import api

urlpatterns = [
    path("me/otp-devices", api.OtpDevicesView.as_view(), name="api-otp-devices"),
    path("me/otp-devices/backup-codes", api.BackupCodesView.as_view(), name="api-otp-backup-codes"),
    path("me/otp-devices/<id:id>", api.OtpDeviceDetailView.as_view(), name="api-otp-device"),
    path("me/otp-devices/<id:id>/confirm", api.OtpDeviceConfirmView.as_view(), name="api-otp-device-confirm"),
]
