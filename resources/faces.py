"""The resources kinds' own fields for the generic faces (config.kinds.Faces): importing these modules runs their
registration decorators (console forms, API serializers, and the services of the kinds whose writes are not plain).
Found by access's autodiscovery of ``faces`` modules, like ``kinds``."""

from resources import forms, serializers  # noqa: F401 - the modules register their classes when imported
from resources.services import resources as _services  # noqa: F401 - registers the kinds' services
