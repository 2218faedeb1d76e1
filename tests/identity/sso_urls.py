"""The project's URLs plus stand-ins for the sign-in flow's routes (identity/signin_urls.py), so the pages that
link to them can be tested before that flow is merged."""

from django.http import HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def _stand_in(request):
    return HttpResponse("stand-in")


urlpatterns = [
    path("login/sso/start/", _stand_in, name="sso-start"),
    path("login/sso/test/", _stand_in, name="sso-test"),
    path("login/sso/back/", _stand_in, name="sso-callback"),
    *project_urlpatterns,
]
