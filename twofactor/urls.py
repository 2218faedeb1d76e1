from django.urls import path

from twofactor import views

urlpatterns = [
    path("account/two-factor/", views.devices, name="twofactor"),
    path("account/two-factor/verify/", views.verify, name="twofactor-verify"),
    path("account/two-factor/required/", views.required, name="twofactor-required"),
]
