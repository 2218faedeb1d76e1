"""API routes of governance.impact under /api/v1/ (included by governance/api_urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
