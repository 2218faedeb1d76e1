"""The console pages of governance: each part owns its routes."""

from governance.impact import urls as impact
from governance.review import urls as review
from governance.rollup import urls as rollup

urlpatterns = [*rollup.urlpatterns, *impact.urlpatterns, *review.urlpatterns]
