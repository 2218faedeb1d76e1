"""Console routes of governance.rollup (included by governance/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
