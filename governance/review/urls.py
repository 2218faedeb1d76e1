"""Console routes of governance.review (included by governance/urls.py)."""

from django.urls import path

from governance.review import views

urlpatterns = [
    path("o/<uuid:org_id>/review/", views.review, name="org-review"),
]
