"""The console's web plumbing, in one public place (issue #10 §2, §4): how a page fetches and authorizes what its
URL names, how every write is dispatched, and how every refusal becomes an answer.

- **Fetch and authorize**: ``fetch_org``, ``fetch_project`` and ``fetch`` ask ``access.policy`` (docs/DESIGN.md §4.1):
  not visible (or deleted) raises NotFound, visible without the capability raises Forbidden. A Forbidden remembers
  the org it happened in, so the 403 page keeps the breadcrumb and the tabs.
- **One dispatch style**: a page's writes are a mapping ``{action: Write}`` given to ``dispatch`` with the function
  that shows the page. Forms and one-button actions alike: a one-button action's form is ``ActionForm``, which
  carries only the version the row had when the page was opened.
- **One error mapping** (``error_page`` outside a form, ``dispatch`` inside one):

  ============== ==============================================================================================
  NotFound       the 404 page (Http404 too): not visible and missing answer the same
  Forbidden      the 403 page in org context, the reason shown (PermissionDenied too)
  ValidationError the page again, the messages on the form's fields, 400
  Conflict       the page again with the message, 409
  Stale          the form again with what the user typed and the message naming who changed it and when, 409
                 (not 412: the browser sent no precondition header; 409 is the console's "the state moved on")
  Busy           the page again with the message, 503 and Retry-After
  ============== ==============================================================================================

- **Forgiving writes** (issue #11 §2): a destructive write declares a ``Confirm`` (what it removes and what goes
  with it). ``dispatch`` answers its first POST with one shared page (templates/_confirm.html) that names them and
  repeats the posted fields, hidden, with ``confirmed=1``: the second POST does it. No JavaScript, the CSRF token and
  the version carried. A write that can be taken back declares an ``Undo``: the done message comes with an "Undo"
  button that POSTs to the write reversing it (``undo_offer`` shows it once, on the next page). The API has none of
  this: a client means what it sends.
- **Staged writes**: a destructive write whose input cannot ride in a hidden field (an uploaded file) checks it on
  the first POST, holds it server-side (``stage``: the cache, under a random token bound to the user and to what it
  acts on, for ``STAGED_FOR`` seconds) and asks with the token as the repeated field (``Confirm.fields``); the
  confirmed POST takes it back (``take_staged``: once, by that user, for that object; else a Conflict, nothing
  written). A cache that cannot hold it is a Busy (503), never a write done without asking.

Nothing is written by a refused request: services raise before writing, inside their transaction.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, router
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from access import policy, vocabulary, whoami
from access.fences import FenceRefusal
from access.services import remember_org
from config.errors import Busy, Conflict, DomainError, Forbidden, NotFound, Stale
from config.kinds import Kind
from orgs import navigation
from orgs.models import Organization, Project

#: The status of a stale console form (see the module's docstring for why not 412).
STALE_STATUS = 409
DENIED = "You do not have permission to do this here."
_ORG_ATTR = "console_org"

# -- fetch and authorize -------------------------------------------------------------------------------------------


def org_of(obj: Any) -> Organization | None:
    """The organization a console object lives in (an org is its own), for framing its pages."""
    while obj is not None and not isinstance(obj, Organization):
        obj = next((getattr(obj, name) for name in ("org", "project", "task") if hasattr(obj, name)), None)
    return obj


def fetch(request: HttpRequest, capability: str, queryset: models.QuerySet, **lookup: Any) -> Any:
    """The object ``lookup`` names in ``queryset`` if the user may see it (else NotFound) and holds ``capability``
    on it (else Forbidden, remembering the object's org for the 403 page: a Forbidden means it is visible)."""
    try:
        obj = policy.get_for(request.user, capability, queryset, **lookup)
    except Forbidden:
        setattr(request, _ORG_ATTR, org_of(queryset.get(**lookup)))
        raise
    setattr(request, _ORG_ATTR, org_of(obj))  # a later refusal (a service's Forbidden) is framed by it too
    return obj


def fetch_org(request: HttpRequest, org_id: UUID, capability: str = "org.view") -> Organization:
    """The live org ``org_id`` if the user may see it (else 404) and holds ``capability`` there (else 403)."""
    return fetch(request, capability, Organization.objects.alive().select_related("tenant"), pk=org_id)


def fetch_project(request: HttpRequest, org_id: UUID, project_id: UUID, capability: str = "project.view") -> Project:
    """The project, only under its own org's URL and only while that org is alive."""
    queryset = Project.objects.select_related("org__tenant").filter(org_id=org_id, org__deleted_at__isnull=True)
    return fetch(request, capability, queryset, pk=project_id)


def require(request: HttpRequest, capability: str, obj: Any) -> None:
    """Forbidden (the 403 page in ``obj``'s org) unless the user holds ``capability`` on ``obj``, which they see."""
    if not policy.can(request.user, capability, obj):
        setattr(request, _ORG_ATTR, org_of(obj))
        raise Forbidden(DENIED, capability=capability)


def parse_uuid(value: Any) -> UUID | None:
    """A posted id as a UUID, None when it is not one (a lookup with None finds nothing: 404)."""
    try:
        return UUID(str(value))
    except (TypeError, ValueError):
        return None


# -- rendering -----------------------------------------------------------------------------------------------------


def render_org_page(
    request: HttpRequest, template: str, org: Organization, *, status: int = 200, **context: Any
) -> HttpResponse:
    """An org page with the breadcrumb and the switcher; a page answered 200 is remembered for the landing page."""
    if status == 200:
        remember_org(user=request.user, org=org)
    page = navigation.context_for(request, org) | context
    page.setdefault("page_crumbs", navigation.page_crumbs(request, page))  # project → task after the org's crumbs
    return render(request, template, page, status=status)


# The console page that opens each kind of authentication fence (access/fences.py), by URL name.
FENCE_PAGES = {"2fa_required": "twofactor-required", "sso_required": "sso-required"}


def error_page(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The answer to a refusal that has no form to show it on: the error's own page, framed by the org when the
    user may see it (a Forbidden only happens on something visible)."""
    if isinstance(exc, NotFound | Http404):
        return render(request, "404.html", status=404)
    fence = exc.fence if isinstance(exc, FenceRefusal) else None
    if fence is not None and fence.code in FENCE_PAGES and request.user.is_authenticated:
        # An authentication fence (access/fences.py): the page that opens it (sign in through the tenant's IdP,
        # verify or set up a second factor), then back here.
        with contextlib.suppress(NoReverseMatch):
            query = urlencode({"next": request.get_full_path(), "tenant": fence.tenant_id, "org": fence.org_id or ""})
            return redirect(f"{reverse(FENCE_PAGES[fence.code])}?{query}")
    if isinstance(exc, Forbidden | PermissionDenied):
        reason = exc.detail if isinstance(exc, Forbidden) else (str(exc) or DENIED)
        # The capability the user lacks, in words, and whom to ask for it (issue #11 §1).
        capability = exc.capability if isinstance(exc, Forbidden) else None
        missing = vocabulary.describe(capability) if capability else None
        org = getattr(request, _ORG_ATTR, None)
        if org is not None and request.user.is_authenticated:
            return render_org_page(
                request, "403.html", org, status=403, reason=reason, missing=missing,
                granters=whoami.granters(request.user, org, capability),
            )  # fmt: skip
        return render(request, "403.html", {"reason": reason, "missing": missing}, status=403)
    if isinstance(exc, ValidationError):
        return render(request, "400.html", {"message": " ".join(exc.messages)}, status=400)
    if isinstance(exc, Busy):
        response = render(request, "503.html", {"message": exc.detail}, status=503)
        for name, value in exc.headers().items():
            response[name] = value
        return response
    if isinstance(exc, DomainError):  # Conflict, Stale and any other refusal of the state
        status = STALE_STATUS if isinstance(exc, Stale) else exc.status
        return render(request, "409.html", {"message": exc.detail}, status=status)
    raise exc


def console_view(view: Callable[..., HttpResponse] | None = None, *, login: bool = True) -> Any:
    """Decorate every console view: sign-in required (unless ``login=False``), and any refusal raised while the
    page fetches, authorizes or renders answered by ``error_page`` (a write's refusals are ``dispatch``'s)."""

    def decorate(func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return func(request, *args, **kwargs)
            except (DomainError, ValidationError, Http404, PermissionDenied) as exc:
                return error_page(request, exc)

        return login_required(wrapper) if login else wrapper

    return decorate(view) if view is not None else decorate


# -- forms ---------------------------------------------------------------------------------------------------------


class EditForm(forms.Form):
    """A form that changes an existing row: it carries, hidden, the version the row had when the form was opened
    (put ``"version": obj.version`` in ``initial``), and the write passes it as ``version=`` to the service, which
    refuses a stale save (``Stale``). Empty means "don't check" (as an absent If-Match in the API)."""

    version = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class ActionForm(EditForm):
    """The form of a one-button action (delete, remove, run, …): nothing but the version of what it acts on."""


def opened(obj: Any, **values: Any) -> dict[str, Any]:
    """The ``initial`` of an edit form opened on ``obj``: ``values`` and the version ``obj`` has now."""
    return {**values, "version": obj.version}


def add_refusal(form: forms.Form, exc: ValidationError, rename: Mapping[str, str] | None = None) -> None:
    """A service's ValidationError on the form: each message on its field (``rename`` maps a service's field name
    to the form's), the rest on top."""
    for name, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
        name = (rename or {}).get(name, name)
        form.add_error(name if name in form.fields and name != "version" else None, errors)


# -- forgiving writes: confirm, then undo ---------------------------------------------------------------------------

#: The field the confirmation page adds to the repeated POST; a destructive write runs only with it.
CONFIRMED = "confirmed"
_UNDO_KEY = "canopy_undo"
_NOT_REPEATED = ("csrfmiddlewaretoken", CONFIRMED)


@dataclass(frozen=True)
class Confirm:
    """What the confirmation page of a destructive write says: the question naming the object (``title``), what
    goes with it (``goes_with``: "3 runs", "every version"), whether and how it can be undone (``note``), the
    button's words and where "Cancel" leads (default: the page the form was on), and the fields the confirmed POST
    carries (default: what was posted; a staged write's token instead of its file)."""

    title: str
    goes_with: Sequence[str] = ()
    note: str = "This cannot be undone."
    button: str = "Delete"
    cancel: str = ""
    fields: Sequence[tuple[str, Any]] | None = None
    #: What the change would do (governance.impact.engine.Impact), shown above the button: a structural change's
    #: preview (who gains and who loses access, what the organizations below inherit, the runs it displaces).
    impact: Any = None


@dataclass(frozen=True)
class Undo:
    """The "Undo" button offered beside a done message: a POST of ``fields`` to ``url`` (a write of its own, which
    refuses when the state moved on, e.g. the member was added back meanwhile)."""

    url: str
    fields: Mapping[str, Any]  # each value as the hidden input's value (kept in the session: JSON only)
    label: str = "Undo"


def goes_with(
    obj: models.Model,
    *,
    skip: Sequence[type[models.Model]] = (),
    names: Mapping[type[models.Model], tuple[str, str]] | None = None,
) -> list[str]:
    """What deleting ``obj`` deletes with it, counted per kind ("3 runs", "1 share"), as the database's cascades
    say (one query per related table, whatever the number of rows). ``skip`` leaves out bookkeeping rows; ``names``
    words a kind better than its verbose names (singular, plural)."""
    collector = Collector(using=router.db_for_write(type(obj), instance=obj))
    try:
        collector.collect([obj])
    except (ProtectedError, RestrictedError):
        return []  # the delete itself will refuse and say why
    counts: dict[type[models.Model], int] = {}
    for model, instances in collector.data.items():
        counts[model] = counts.get(model, 0) + len(instances) - (1 if model is type(obj) else 0)
    for queryset in collector.fast_deletes:
        counts[queryset.model] = counts.get(queryset.model, 0) + queryset.count()
    lines = []
    for model, n in counts.items():
        if n and not issubclass(model, tuple(skip)) and not model._meta.auto_created:
            one, many = (names or {}).get(model) or (model._meta.verbose_name, model._meta.verbose_name_plural)
            lines.append(f"{n} {one if n == 1 else many}")
    return sorted(lines, key=lambda line: line.split(" ", 1)[1])


def confirm_page(
    request: HttpRequest,
    confirm: Confirm,
    fields: Sequence[tuple[str, Any]] | None = None,
    *,
    status: int = 200,
    error: str = "",
) -> HttpResponse:
    """The one confirmation page (templates/_confirm.html): ``confirm``'s words and a form repeating ``fields``
    (default: ``confirm.fields``, else what was posted) with ``confirmed=1``, posted back to this URL. Framed by the
    org when there is one."""
    if fields is None:
        fields = confirm.fields
    if fields is None:
        fields = [(k, v) for k, values in request.POST.lists() if k not in _NOT_REPEATED for v in values]
    context = {
        "confirm": confirm,
        "fields": [*fields, (CONFIRMED, "1")],
        "cancel": confirm.cancel or _came_from(request),
        "error": error,
    }
    org = getattr(request, _ORG_ATTR, None)
    if org is not None and request.user.is_authenticated:
        return render_org_page(request, "_confirm.html", org, status=status, **context)
    return render(request, "_confirm.html", context, status=status)


def _came_from(request: HttpRequest) -> str:
    """The page the destructive button was on (this site's own Referer), else this URL: where Cancel leads."""
    referer = request.headers.get("Referer", "")
    secure = request.is_secure()
    if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}, require_https=secure):
        return referer
    return request.get_full_path()


#: How long a staged write's input is held for its confirmation (seconds).
STAGED_FOR = 15 * 60
_STAGED_KEY = "canopy:staged:{}"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
NOT_HELD = (
    "What you were asked to confirm is no longer held: it is kept {minutes} minutes, used once, by the person who "
    "asked. Start again."
)


def stage(request: HttpRequest, bound_to: str, value: Any) -> str:
    """Hold ``value`` (an uploaded file's content and what the question was asked about) for the confirmed POST of a
    destructive write: a random token, bound to the user and to ``bound_to`` (what the write acts on), kept
    ``STAGED_FOR`` seconds. Busy (503) when the cache does not keep it (down, or failing open): the write must not go
    on without its question."""
    token = secrets.token_urlsafe(32)
    key = _STAGED_KEY.format(token)
    cache.set(key, {"user": str(request.user.pk), "bound_to": bound_to, "value": value}, STAGED_FOR)
    if not cache.has_key(key):
        raise Busy("The file cannot be held for your confirmation right now: try again in a moment.")
    return token


def take_staged(request: HttpRequest, bound_to: str, token: str) -> Any:
    """The value ``stage`` held under ``token`` for this user and ``bound_to``, taken: a token works once. A Conflict
    (409, nothing written) when it is malformed, expired, used, another user's or held for something else (one
    message for all: a token names nothing to someone it does not belong to); another's token is left alone."""
    key = _STAGED_KEY.format(token)
    held = cache.get(key) if _TOKEN.fullmatch(token) else None
    if not isinstance(held, dict) or held.get("user") != str(request.user.pk) or held.get("bound_to") != bound_to:
        raise Conflict(NOT_HELD.format(minutes=STAGED_FOR // 60))
    if not cache.delete(key):  # delete answers whether it was there: of two racing POSTs, one wins
        raise Conflict(NOT_HELD.format(minutes=STAGED_FOR // 60))
    return held["value"]


def offer_undo(request: HttpRequest, undo: Undo) -> None:
    """Offer ``undo`` on the next page shown (beside the done message)."""
    fields = {name: "" if value is None else str(value) for name, value in undo.fields.items()}
    request.session[_UNDO_KEY] = {"url": undo.url, "fields": fields, "label": undo.label}


def undo_offer(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``undo_offer``, the pending "Undo" button, taken (and so shown once) when a page reads
    it; nothing at all when none is pending (the session is only read, as messages' is)."""
    session = getattr(request, "session", None)
    if session is None or _UNDO_KEY not in session:
        return {}
    return {"undo_offer": lambda: session.pop(_UNDO_KEY, None)}


# -- the one dispatch ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One write a page offers (a POST with ``action=<name>``, or the page's only write).

    ``capability``/``on``: checked first (a denied user gets the 403 page, never a form's verdict); ``form``: the
    form class or factory (called with POST and FILES), ``ActionForm`` for one button; ``run``: calls the service
    with the cleaned data (``version`` among it); then ``done`` is flashed and the user is sent to ``then(result)``
    (a URL, or a response of its own)."""

    run: Callable[[dict[str, Any]], Any]
    then: Callable[[Any], str | HttpResponse]
    done: str | Callable[[Any], str] = ""
    capability: str | None = None
    on: Any = None
    form: Callable[..., forms.Form] = ActionForm
    form_key: str = ""  # the name the page's template shows this form under; empty for a one-button action
    rename: Mapping[str, str] = field(default_factory=dict)
    # A destructive write: (cleaned data) -> what the confirmation page says (None: this one needs no question, e.g.
    # an import that only adds). Unconfirmed POSTs change nothing.
    confirm: Callable[[dict[str, Any]], Confirm | None] | None = None
    # A write that can be taken back: (result) -> the "Undo" button offered with the done message (or None).
    undo: Callable[[Any], Undo | None] | None = None


Show = Callable[[dict[str, Any]], HttpResponse]


def dispatch(request: HttpRequest, writes: Mapping[str, Write], show: Show) -> HttpResponse:
    """GET (and HEAD) show the page. A POST runs one write; a refusal answers as the module's table says: the page
    shown again by ``show(context)`` with the bound form under its ``form_key``, ``error`` (a message without a
    field) and ``failed_action``, and the status, or the error's own page for NotFound and Forbidden. A valid POST
    of a write with ``confirm`` and without ``confirmed=1`` answers the confirmation page instead and writes nothing
    (after the capability and the form: a denied or malformed request is refused, not asked about), unless its
    ``confirm`` answers None (nothing to ask about this time)."""
    if request.method != "POST":
        return show({})
    name = request.POST.get("action", "")
    write = writes.get(name) or (next(iter(writes.values())) if len(writes) == 1 else None)
    if write is None:
        return error_page(request, ValidationError("Unknown action."))
    try:
        if write.capability is not None:
            require(request, write.capability, write.on)
        form = write.form(request.POST, request.FILES)
        if not form.is_valid():
            return _again(request, show, write, form, None, 400)
        if write.confirm is not None and request.POST.get(CONFIRMED) != "1":
            question = write.confirm(form.cleaned_data)
            if question is not None:
                return confirm_page(request, question)
        result = write.run(form.cleaned_data)
    except (NotFound, Http404, Forbidden, PermissionDenied) as exc:
        return error_page(request, exc)
    except ValidationError as exc:
        add_refusal(form, exc, write.rename)
        return _again(request, show, write, form, None, 400)
    except DomainError as exc:
        return _again(request, show, write, form, exc, STALE_STATUS if isinstance(exc, Stale) else exc.status)
    done = write.done(result) if callable(write.done) else write.done
    if done:
        messages.success(request, done)
    offer = write.undo(result) if write.undo is not None else None
    if offer is not None:
        offer_undo(request, offer)
    target = write.then(result)
    return target if isinstance(target, HttpResponse) else redirect(target)


def form_page(
    request: HttpRequest,
    org: Organization,
    write: Write,
    initial: forms.Form,
    *,
    title: str,
    submit: str,
    cancel: str | None = None,
) -> HttpResponse:
    """A page whose only content is one form (orgs/form.html): ``initial`` on GET, the bound form after a refusal."""

    def show(context: dict[str, Any]) -> HttpResponse:
        return render_org_page(
            request,
            "orgs/form.html",
            org,
            form=context.get(write.form_key, initial),
            title=title,
            submit=submit,
            cancel=cancel or reverse("org", args=[org.pk]),
            error=context.get("error"),
        )

    return dispatch(request, {"": write}, show)


def _again(
    request: HttpRequest, show: Show, write: Write, form: forms.Form, exc: DomainError | None, status: int
) -> HttpResponse:
    """The page shown again after a refusal, the user's input kept in the bound form."""
    error = ""
    if exc is not None:  # shown on top of the page (templates/_error.html), the form kept as the user filled it
        error = exc.detail + (" What you typed is kept below." if isinstance(exc, Stale) and write.form_key else "")
    elif not write.form_key:  # a one-button action's refusal: there is no form to show it on
        error = " ".join(str(message) for errors in form.errors.values() for message in errors)
    context: dict[str, Any] = {"error": error, "failed_action": request.POST.get("action", "")}
    if write.form_key:
        context[write.form_key] = form
    response = show(context)
    response.status_code = status
    if exc is not None:
        for header, value in exc.headers().items():
            if header != "ETag":
                response[header] = value
    return response


# -- a declared kind's console extras ------------------------------------------------------------------------------
#
# The generic pages of a declared kind (resources.views.declared_list and declared_detail) need nothing but its
# registry entry and its console form. A kind whose pages show or write more (a credential's secret fields, a lookup
# table's rows and CSV import, a component's team and versions) registers hooks here.


def without_version(d: dict[str, Any]) -> dict[str, Any]:
    """A form's cleaned data as a write's fields: the version goes to the service apart (``version=``)."""
    return {k: v for k, v in d.items() if k != "version"}


@dataclass(frozen=True)
class Extras:
    """What a kind's console pages add to the generic plumbing. Every hook is optional: a plain kind has none and
    gets the generic templates, its form's fields as the write's fields and the object's attributes as the edit
    form's initial values."""

    list_template: str = "resources/declared_list.html"
    detail_template: str = "resources/declared_detail.html"
    noun: str = ""  # the deleted message's noun ("Variable K was deleted."); default: the kind's label
    list_queryset: Callable[[Kind], models.QuerySet] | None = None  # default: the kind's inheritable queryset
    list_context: Callable[[], dict[str, Any]] | None = None
    create_fields: Callable[[dict[str, Any]], dict[str, Any]] = without_version
    create_rename: Mapping[str, str] = field(default_factory=dict)
    created_then: str = "detail"  # where a created object sends the user: its "detail" page or the "list"
    detail_queryset: Callable[[Kind], models.QuerySet] | None = None
    # (request, org_id, item_id, kind) -> (org, item) where an object may be opened outside its org's path
    fetch: Callable[[HttpRequest, UUID, UUID, Kind], tuple[Organization, Any]] | None = None
    manage_on: Callable[[Any], Any] = lambda item: item  # what the manage capability is checked on
    edit_form: Callable[[Any], Callable[..., forms.Form]] | None = None  # item -> form factory
    update_fields: Callable[[Any, dict[str, Any], forms.Form], dict[str, Any]] | None = None  # (item, data, form)
    edit_rename: Mapping[str, str] = field(default_factory=dict)
    initial: Callable[[Any], dict[str, Any]] | None = None
    back: Callable[[Organization, Any], str] | None = None  # where a deleted object sends the user; default the list
    # (request, org, item, here) -> the detail page's own writes; (request, org, item) -> its own context
    detail_writes: Callable[[HttpRequest, Organization, Any, str], dict[str, Write]] | None = None
    detail_context: Callable[[HttpRequest, Organization, Any], dict[str, Any]] | None = None


EXTRAS: dict[type[models.Model], Extras] = {}


def register_extras(model: type[models.Model], extras: Extras) -> Extras:
    """Give ``model``'s declared kind its console extras (from its faces.py, beside its form): a kind registers its
    pages' additions where it registers its fields, and no console module names it."""
    EXTRAS[model] = extras
    return extras


def extras_of(model: type[models.Model]) -> Extras:
    """``model``'s console extras; none (the generic pages as they are) for a plain kind."""
    return EXTRAS.get(model) or Extras()


__all__ = [
    "CONFIRMED",
    "DENIED",
    "STAGED_FOR",
    "STALE_STATUS",
    "ActionForm",
    "Confirm",
    "EditForm",
    "Extras",
    "Undo",
    "Write",
    "add_refusal",
    "confirm_page",
    "console_view",
    "dispatch",
    "error_page",
    "extras_of",
    "fetch",
    "fetch_org",
    "fetch_project",
    "form_page",
    "goes_with",
    "offer_undo",
    "opened",
    "org_of",
    "parse_uuid",
    "register_extras",
    "render_org_page",
    "require",
    "stage",
    "take_staged",
    "undo_offer",
]  # fmt: skip
