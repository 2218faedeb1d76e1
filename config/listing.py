"""Long console lists: one way to search (``?q=``) and paginate them (issue #11 §6).

A list view narrows its rows with ``search`` (a queryset: one ``icontains`` per field, OR-ed, in SQL) or
``search_rows`` (rows already in memory, e.g. an effective list: by the text a key function gives), then hands them
to ``paginate``, which reads ``?page=`` and keeps every other query parameter for the links. The template shows
``templates/_search.html`` and ``templates/_pagination.html`` with the ``listing`` it gets.

Paging is forgiving and always the same: a page past the end shows the last page, a page that is not a number the
first one (Django's ``Paginator.get_page``); nothing answers 404 for a page number. A queryset costs two queries (the
count and the page), whatever the number of rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest

PER_PAGE = 50
MAX_SEARCH = 100  # characters of ``q`` used: a search is a few words, not a document


@dataclass(frozen=True)
class Listing:
    """One page of a list and what its links need: ``link`` is the URL prefix a page number completes (the other
    query parameters kept), ``q`` the search as typed (trimmed)."""

    page: Page
    q: str
    link: str

    @property
    def paginated(self) -> bool:
        return self.page.paginator.num_pages > 1

    @property
    def count(self) -> int:
        return self.page.paginator.count


def search_term(request: HttpRequest) -> str:
    return request.GET.get("q", "").strip()[:MAX_SEARCH]


def search(queryset: QuerySet, q: str, fields: Sequence[str]) -> QuerySet:
    """``queryset`` narrowed to the rows where one of ``fields`` contains ``q`` (case-insensitive); all of it when
    ``q`` is empty."""
    if not q:
        return queryset
    condition = Q()
    for name in fields:
        condition |= Q(**{f"{name}__icontains": q})
    return queryset.filter(condition)


def search_rows(rows: Iterable[Any], q: str, text: Callable[[Any], Iterable[str | None]]) -> list[Any]:
    """The rows one of whose ``text(row)`` strings contains ``q`` (case-insensitive); all of them when ``q`` is
    empty."""
    rows = list(rows)
    if not q:
        return rows
    needle = q.casefold()
    return [row for row in rows if any(needle in (value or "").casefold() for value in text(row))]


def paginate(request: HttpRequest, items: Any, *, per_page: int = PER_PAGE, param: str = "page") -> Listing:
    """The page of ``items`` (a queryset, ordered, or a list) that ``?<param>=`` asks for."""
    page = Paginator(items, per_page).get_page(request.GET.get(param))
    query = request.GET.copy()
    query.pop(param, None)
    query.pop("format", None)
    kept = query.urlencode()
    return Listing(page=page, q=search_term(request), link=f"?{kept}&{param}=" if kept else f"?{param}=")
