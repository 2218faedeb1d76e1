"""Console routes of governance.review (included by governance/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
