"""The runtime kind's writes for the generic parts (config.kinds.Faces): importing runtimes.services registers
them (``kinds.kind_services``). Runtimes register no generic console form and no generic API serializers: their
pages and API views are their own (runtimes/views.py, runtimes/api.py), because an org's runtime list holds the
platform's global runtimes beside its declared ones."""

from orgs import navigation
from runtimes import services  # noqa: F401 - registers the kind's services when imported
from runtimes.models import Runtime

navigation.OWN_PAGES.add(Runtime)  # its pages are runtimes/views.py: the org's navigation shows their tab
