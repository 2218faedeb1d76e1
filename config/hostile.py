"""Hostile input: text that no database or UTF-8 encoder takes is refused with a 400, decided here.

Two kinds of code point reach Python strings from a request and used to fail deep inside, as a 500: NUL (U+0000),
which PostgreSQL refuses in text and jsonb (DataError), and lone UTF-16 surrogates (U+D800–U+DFFF), which no UTF-8
encoder takes (UnicodeEncodeError in the database driver, or in the JSON renderer echoing a field error). JSON
escapes ("\\u0000", "\\ud800") put them in a body, percent-escapes (%00) in a URL, and a request charset such as
``unicode_escape`` in a query string or a multipart field. ``find_invalid`` finds them in any nested value, and
every face asks it at its edge:

- ``RejectInvalidCharactersMiddleware``: the URL path, the query parameters and the POST form fields (names and
  values, upload file names) of every request: console, admin and API;
- ``JSONParser``, ``FormParser``, ``MultiPartParser``: the API's bodies (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES),
  also on PUT and PATCH, which Django itself does not parse;
- ``JSONFormField`` and ``check_text``: the console's and the admin's fields that parse JSON text, and the content
  of uploaded files (CSV imports), as field errors.

A database error that still gets through is the last line: ``database_error_answer`` maps a DataError to 400 and
an IntegrityError (a race on a unique value) to 409, for the API's exception handler and, in the console and the
admin, ``DatabaseErrorMiddleware``. Both are logged as warnings, without the statement's values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from rest_framework import exceptions, parsers

logger = logging.getLogger(__name__)

INVALID_RE = re.compile("[\x00\ud800-\udfff]")
CODE = "invalid_characters"
_MAX_SEGMENT = 50  # a key longer than this is cut in a reported path


@dataclass(frozen=True)
class Invalid:
    """Where the first invalid code point sits: ``path`` like ``rows[0].key`` ("" for the value itself);
    ``in_key`` when it is in the name of an object key (which is then never echoed)."""

    path: str
    code_point: int
    in_key: bool = False
    offset: int = 0  # in the string where it was found

    @property
    def character(self) -> str:
        return "NUL (U+0000)" if self.code_point == 0 else f"a lone surrogate (U+{self.code_point:04X})"

    def message(self, subject: str = "") -> str:
        """A sentence for the client, naming where (never quoting the text: it may be a secret)."""
        if not subject:
            if self.in_key:
                subject = f"A key name in “{self.path}”" if self.path else "A key name"
            else:
                subject = f"“{self.path}”" if self.path else "The text"
        return f"{subject} holds {self.character}, which is not allowed in text."


def find_invalid(value: Any, path: str = "") -> Invalid | None:
    """The first NUL or lone surrogate in ``value``: a str, or dicts (keys and values), lists and tuples of them
    nested to any depth (walked without recursion). None when the value is clean."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if match := INVALID_RE.search(item):
                return Invalid(where, ord(match.group()), offset=match.start())
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str) and (match := INVALID_RE.search(key)):
                    return Invalid(where, ord(match.group()), in_key=True)
                children.append((_join(where, key), child))
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(f"{where}[{index}]", child) for index, child in enumerate(item)]))
    return None


def _join(path: str, key: Any) -> str:
    key = str(key)
    key = key if len(key) <= _MAX_SEGMENT else f"{key[:_MAX_SEGMENT]}…"
    return f"{path}.{key}" if path else key


def check_text(value: Any, subject: str = "", *, field: str | None = None) -> None:
    """Raise a (form or service) ValidationError, on ``field`` if given, when ``value`` holds an invalid code
    point. ``subject`` names the value in the message ("The file"); for a text, the message gives the line."""
    found = find_invalid(value)
    if found is None:
        return
    if subject and isinstance(value, str):
        subject = f"{subject} (line {value.count(chr(10), 0, found.offset) + 1})"
    error = ValidationError(found.message(subject), code=CODE)
    raise ValidationError({field: [error]}) if field else error


# -- answers -------------------------------------------------------------------------------------------------------


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def answer(request: HttpRequest, status: int, body: dict[str, Any], template: str) -> HttpResponse:
    """The API's JSON error body, or the console's page showing its ``detail``."""
    if is_api(request):
        return JsonResponse(body, status=status)
    return HttpResponse(render_to_string(template, {"message": body["detail"]}, request), status=status)


def refusal(request: HttpRequest, found: Invalid, subject: str, parameter: str | None = None) -> HttpResponse:
    body = {"detail": found.message(subject), "code": CODE}
    if parameter is not None:
        body["parameter"] = parameter
    return answer(request, 400, body, "400.html")


def database_error_answer(exc: BaseException, request: Any) -> tuple[int, dict[str, str]] | None:
    """The last line behind the checks above: a value the database refused (DataError) → 400, a unique value
    taken by a concurrent request (IntegrityError) → 409 ``conflict``. None for any other exception. Logged as a
    warning with the first line of the database's message only (the next lines may quote the row's values)."""
    if isinstance(exc, IntegrityError):
        status, detail, code = (
            409,
            "This conflicts with a change made at the same time: reload and try again.",
            "conflict",
        )
    elif isinstance(exc, DataError):
        status, detail, code = 400, "The database refused a value of this request.", "invalid"
    else:
        return None
    first_line = (str(exc).strip().splitlines() or [""])[0]
    logger.warning("%s on %s %s answered %s: %s", type(exc).__name__, request.method, request.path, status, first_line)
    return status, {"detail": detail, "code": code}


# -- the faces' edges ----------------------------------------------------------------------------------------------


def first_invalid_parameter(params: Any) -> Invalid | None:
    """The first parameter of a QueryDict or MultiValueDict (names, values, upload file names) holding an invalid
    code point: its ``path`` is the parameter's name ("" when the name itself is invalid)."""
    for name, values in params.lists():
        if match := INVALID_RE.search(name):
            return Invalid("", ord(match.group()), in_key=True)
        texts = [getattr(value, "name", value) for value in values]
        if (found := find_invalid(texts)) is not None:
            return Invalid(name, found.code_point)
    return None


def _parameter_subject(found: Invalid, kind: str) -> str:
    return f"A {kind} name" if found.in_key else f"The {kind} “{found.path[:_MAX_SEGMENT]}”"


class HostileInputMiddleware:
    """Refuses a request whose URL path, query parameters, cookies or (outside the API) POST form fields hold an
    invalid code point, before any view, session or database sees it: JSON 400 ``invalid_characters`` naming the
    ``parameter`` under /api/, the 400 page elsewhere. The API's bodies are left to its parsers (below), which
    check PUT and PATCH bodies too and keep DRF's answer to a malformed multipart body.

    It also answers the database errors that get past every check (``database_error_answer``) for the views
    outside DRF: the console and the admin."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if match := INVALID_RE.search(request.path):
            return refusal(request, Invalid("", ord(match.group())), "The URL path")
        for kind, params in self._parameters(request):
            if (found := first_invalid_parameter(params)) is not None:
                return refusal(request, found, _parameter_subject(found, kind), found.path or None)
        return self.get_response(request)

    @staticmethod
    def _parameters(request: HttpRequest) -> Iterable[tuple[str, Any]]:
        if request.META.get("QUERY_STRING"):
            yield "parameter", request.GET
        if request.COOKIES:
            yield "cookie", _Lists(request.COOKIES)
        if request.method == "POST" and not is_api(request):
            yield "field", request.POST
            yield "field", request.FILES

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        found = database_error_answer(exception, request)
        if found is None:
            return None
        status, body = found
        return answer(request, status, body, f"{status}.html")


class _Lists:
    """A plain dict seen as a MultiValueDict (cookies)."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def lists(self) -> Iterable[tuple[str, list[str]]]:
        return ((name, [value]) for name, value in self.values.items())


class InvalidCharacters(exceptions.ParseError):
    """An API body holding an invalid code point: 400 {"detail", "code": "invalid_characters"} and where."""

    default_code = CODE

    def __init__(self, found: Invalid, where: str, subject: str = ""):
        body = {"detail": found.message(subject), "code": CODE}
        if found.path:
            body[where] = found.path
        super().__init__(body)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing invalid code points anywhere in the body (``field`` gives the path, e.g.
    ``rows[2].key``) and a body nested too deeply for the decoder (DRF lets that RecursionError through: a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.") from None
        if (found := find_invalid(data)) is not None:
            raise InvalidCharacters(found, "field")
        return data


def _check_form(data: Any, files: Any = None) -> None:
    for params in (data, files):
        if params is not None and (found := first_invalid_parameter(params)) is not None:
            raise InvalidCharacters(found, "parameter", _parameter_subject(found, "field"))


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        result = super().parse(stream, media_type, parser_context)
        _check_form(result.data, result.files)
        return result


class JSONFormField(forms.JSONField):
    """A form field of JSON text (the console's task steps, the admin's JSON columns) that refuses invalid code
    points with a field error, and shows the text as typed again (re-rendering the parsed value would put them in
    the page: a lone surrogate cannot even be encoded)."""

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError("The JSON is nested too deeply.", code="invalid") from None
        check_text(converted)
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)
        if find_invalid(value) is not None:
            return forms.fields.InvalidJSONInput(data)
        return value
