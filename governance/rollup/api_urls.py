"""API routes of governance.rollup under /api/v1/ (included by governance/api_urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
