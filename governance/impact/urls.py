"""Console routes of governance.impact (included by governance/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
