"""The resources kinds' own fields for the generic faces (config.kinds.Faces): importing these modules runs their
registration decorators. Found by access's autodiscovery of ``faces`` modules, like ``kinds``."""

from resources import forms, serializers  # noqa: F401 - the modules register their classes when imported
