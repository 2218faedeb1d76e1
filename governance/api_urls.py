"""The API routes of governance under /api/v1/: each part owns its routes."""

from governance.impact import api_urls as impact
from governance.review import api_urls as review
from governance.rollup import api_urls as rollup

urlpatterns = [*rollup.urlpatterns, *impact.urlpatterns, *review.urlpatterns]
