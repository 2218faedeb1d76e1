"""Path converters of the API.

``<id:…>``: an object's id in the path, a UUID in either letter case (RFC 9562 makes UUIDs case-insensitive on input,
and some platforms print them in capitals); Django's own ``<uuid:…>`` matches lower case only, and a capitalised id
would be a 404. Anything else is no match at all: the API's JSON 404 (config.api_urls), the same as an id of nothing.
The OpenAPI schema documents it as ``format: uuid`` (SPECTACULAR_SETTINGS["PATH_CONVERTER_OVERRIDES"]).
"""

from __future__ import annotations

import uuid

from django.urls import register_converter

HEX = "[0-9a-fA-F]"


class ObjectIdConverter:
    regex = f"{HEX}{{8}}-{HEX}{{4}}-{HEX}{{4}}-{HEX}{{4}}-{HEX}{{12}}"

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: uuid.UUID | str) -> str:
        return str(value)


register_converter(ObjectIdConverter, "id")
