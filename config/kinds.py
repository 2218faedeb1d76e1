"""The kind registry: one entry per kind of object the policy decides on, filled by the app that owns the model.

Why: the policy (access/policy.py) used to switch on model labels of other apps ("resources.credential", …) in
~28 places, so every new kind meant edits in the policy, the inheritance engine, the views, the API and the tests.
Now each app registers its kinds in its kinds.py (orgs/kinds.py, resources/kinds.py; access's AppConfig.ready
autodiscovers them, as the admin does admin.py) and every generic part reads the entry: the policy asks
``kinds.of(obj).rule`` instead of a label, the inheritance engine takes the inheritable queryset and the hide kind
from it, the role-table tests iterate over it. Like wagtail's permission
policies, a *rule* is a policy per model family (tenant, org, project, declared-in-org, task, child-of-another-kind),
asked through the fixed vocabulary of access.policy (``can``, ``visible``, ``explain``); a kind picks its family and
supplies the facts that family needs (where it lives, its view and manage capabilities, a development team …).

What a new declared kind needs (measured for the runtimes issue's ``Runtime``: declared at an org, inherited,
overridable, lockable, hideable, audited). Four places, all in the new app:

1. the model and its migration: ``class Runtime(NamedDeclaration)`` in runtimes/models.py with ``KIND = "runtime"``
   (the abstract Declaration gives org, lock, name, created_by, version; ``Hidden.kind`` takes its choices from this
   registry, so resources/ needs no edit and no migration);
2. its registry entry, runtimes/kinds.py (autodiscovered: no AppConfig edit)::

       kinds.register(Kind(model=Runtime, rule=Rule.DECLARED, view="runtime.view", manage="runtime.manage",
                           within="org", label="runtime", label_plural="runtimes", console_list="runtimes",
                           console_detail="runtime", api_list="api-org-runtimes", api_detail="api-runtime"))

   With it the policy decides it (404 without ``runtime.view`` where it is declared or below, 403 without
   ``runtime.manage``, explain), the inheritance engine resolves it (nearest wins, locks, hides; one query at any
   depth) and the registry tests check it (capabilities of the vocabulary, URL names that reverse, the role table
   where it is declared, above and below). tests/test_kinds_registry.py registers such a kind and shows all this;
3. its fields for the faces: a serializer and a form with the kind-specific fields only;
4. its admin registration.

The capabilities ``runtime.view``/``runtime.manage`` are in the vocabulary (access/roles.py) already.

Measured today, 2026-11-30, the four hold for everything this module feeds (policy, inheritance, hides, role-table
tests), and for the writes, the API and the admin: resources.services.declarations.DeclarationServices are the
default writes of a declared kind (authorize, tenant lock, inheritance checks, lock_for_update + save_changes,
audit events ``<kind>.create|update|delete``), ``services_for(model)`` picks a kind's registered services or those;
the hide service reads ``hideable()``; resources/api.py serves every declared kind that has ``api_list``,
``api_detail`` and a Faces serializer with one generic list/create and detail view (ETag, If-Match), whose URL
patterns resources/api_urls.py generates (path segment: ``api_list`` without ``api-org-``); the admin
registration subclasses resources.admin.DeclarationAdmin with only its fields. tests/test_generic_kind_api.py and
tests/test_generic_kind_admin.py register a throwaway kind with only an entry, serializers or an admin subclass and
drive it end to end. The console (resources/views.py, urls.py, forms, templates) is measured by its own tests.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import models


class Rule(enum.Enum):
    """The model families the policy knows, each with its own way of deriving capabilities on an object."""

    TENANT = "tenant"  # tenant administrators only (and superusers)
    ORG = "org"  # the roles granted on the org and its ancestors, minus inheritance cuts
    PROJECT = "project"  # the org's roles plus the grants on the project itself
    DECLARED = "declared"  # declared at an org: its roles, plus the view capability held anywhere below it
    TASK = "task"  # lives in a project: the project's roles plus per-object shares
    CHILD = "child"  # goes with another registered object (``within``), e.g. a run with its task


@dataclass(frozen=True)
class DevelopmentTeam:
    """Capabilities that come from being on the object's own team, never from a role (a component's developers).

    ``object_ids(user)`` is a flat values_list query of the objects whose team ``user`` is on: evaluated once per
    request for checks, and used as a subquery in lists (so a list stays one query)."""

    object_ids: Callable[[Any], models.QuerySet]
    grants: frozenset[str]  # what being on the team gives on the object
    exclusive: str  # the capability that only the team holds (no role gives it), e.g. component.push
    member_reason: str  # explain(): what membership adds to the object's other capabilities
    exclusive_reason: str  # explain(): why a member holds ``exclusive``
    refusal: str  # explain(): why a non-member does not hold ``exclusive``


@dataclass(frozen=True)
class Kind:
    """One registered kind. ``within`` is the field leading to where its rules apply: ``org`` for a declaration,
    ``project`` for a task, the parent for a CHILD (``task`` for a run), ``org`` for a project, "" otherwise."""

    model: type[models.Model]
    rule: Rule
    view: str  # the capability without which the object does not exist for the caller (404)
    manage: str = ""  # the capability that creates, changes and deletes it ("" when no single one does)
    within: str = ""
    label: str = ""  # singular, lower case ("credential"); default: the model's verbose_name
    label_plural: str = ""
    tab: str = ""  # the console tab's short label; default: the plural label, capitalized
    # URL names (""= none): console list (org_id) and detail (org_id, item_id); API list (id of the org) and detail
    console_list: str = ""
    console_detail: str = ""
    api_list: str = ""
    api_detail: str = ""
    # DECLARED: narrows any queryset of the model to what takes part in org inheritance (effective lists, overrides,
    # locks, hides). None: the whole model does.
    inheritable: Callable[[models.QuerySet], models.QuerySet] | None = None
    team: DevelopmentTeam | None = None
    # DECLARED: a field to another registered object; when set on an instance, the instance goes with that object
    # (a component's environment variable) and ``owner_team_grants`` is what the owner's team gets on it.
    owner: str = ""
    owner_team_grants: frozenset[str] = field(default_factory=frozenset)
    # TASK: the per-object share tables (a user share model, a team share model: access.models.UserShare and
    # TeamShare subclasses) whose rows the resolver reads as "share" facts. Empty: the kind cannot be shared.
    shares: tuple[type[models.Model], ...] = ()

    def __post_init__(self) -> None:
        meta = self.model._meta
        if not self.label:
            object.__setattr__(self, "label", str(meta.verbose_name))
        if not self.label_plural:
            object.__setattr__(self, "label_plural", str(meta.verbose_name_plural))
        if self.rule in (Rule.DECLARED, Rule.TASK, Rule.CHILD, Rule.PROJECT) and not self.within:
            raise ValueError(f"{meta.label}: a {self.rule.value} kind says where it lives (within=…).")

    @property
    def key(self) -> str:
        """The model's label (``app.model``): how the audit log names targets."""
        return self.model._meta.label_lower

    @property
    def hidden_kind(self) -> str:
        """The ``Hidden.kind`` that hides it ("" when it cannot be hidden): declared once, on the model (KIND)."""
        return str(getattr(self.model, "KIND", "") or "")

    @property
    def tab_label(self) -> str:
        return self.tab or self.label_plural[:1].upper() + self.label_plural[1:]

    @property
    def name_field(self) -> str:
        """The field overriding matches on, case-insensitively (NAME_FIELD on the model)."""
        return str(getattr(self.model, "NAME_FIELD", "name"))

    @property
    def owner_attname(self) -> str:
        if not self.owner:
            return ""
        field = self.model._meta.get_field(self.owner)
        assert isinstance(field, models.Field), f"{self.key}.{self.owner} is a relation's reverse side"
        return field.attname

    def inheritable_queryset(self, queryset: models.QuerySet | None = None) -> models.QuerySet:
        """``queryset`` (default: every row) narrowed to what takes part in org inheritance."""
        qs = queryset if queryset is not None else self.model._default_manager.all()
        return self.inheritable(qs) if self.inheritable is not None else qs


class KindServices(Protocol):
    """The writes of a declared kind, as the generic faces call them (resources.services.declarations gives a default
    for kinds whose writes are plain: authorize, lock, inheritance checks, save, audit)."""

    def create(self, *, actor: Any, org: Any, **fields: Any) -> Any: ...

    def update(self, *, actor: Any, item: Any, version: Any = None, **fields: Any) -> Any: ...

    def delete(self, *, actor: Any, item: Any, version: Any = None) -> None: ...


@dataclass
class Faces:
    """What a kind adds to the generic console, API and admin: only its own fields and, when its writes are not
    plain, its services. Filled by the decorators below from the module that defines each class (a kind's
    ``faces.py``, autodiscovered like ``kinds.py``), read by the generic views, API views and URL patterns."""

    form: type | None = None  # console: a Django form of the kind-specific fields (create and edit)
    serializer: type | None = None  # API: the read representation's kind-specific fields
    write_serializer: type | None = None  # API: the create body
    update_serializer: type | None = None  # API: the PATCH body (default: write_serializer, every field optional)
    services: KindServices | None = None  # None: the default declaration services


class Registry:
    """Kinds by model. Filled at start-up (AppConfig.ready), read on every policy call: the lookups the policy makes
    per check (``of``, ``exclusive``, ``view_below``) are a dict get or an attribute, kept current by ``register``
    (a cached check costs about a microsecond, so a method call more per check would show in the benchmark)."""

    def __init__(self) -> None:
        self.by_model: dict[type[models.Model], Kind] = {}
        # capability only a development team holds -> its kind (updated in place: the policy keeps a reference)
        self.by_exclusive: dict[str, Kind] = {}
        self.view_below: frozenset[str] = frozenset()
        self.faces: dict[type[models.Model], Faces] = {}

    def register(self, kind: Kind) -> Kind:
        """Add (or, when an app is made ready again in tests, replace) the entry of ``kind.model``."""
        self.by_model[kind.model] = kind
        self._derive()
        return kind

    def _derive(self) -> None:
        self.by_exclusive.clear()
        self.by_exclusive.update({k.team.exclusive: k for k in self.by_model.values() if k.team is not None})
        # The view capabilities of the declared kinds: held anywhere below a declaring org, they see upward.
        self.view_below = frozenset(k.view for k in self.declared())

    def register_all(self, kinds: Iterable[Kind]) -> None:
        for kind in kinds:
            self.register(kind)

    def unregister(self, model: type[models.Model]) -> None:
        """Remove ``model``'s entry (tests that register a throwaway kind)."""
        del self.by_model[model]
        self._derive()

    def find(self, model_or_obj: type[models.Model] | models.Model) -> Kind | None:
        model: type[models.Model] = model_or_obj if isinstance(model_or_obj, type) else type(model_or_obj)
        kind = self.by_model.get(model)
        concrete = model._meta.concrete_model
        if kind is None and concrete is not None:
            kind = self.by_model.get(concrete)  # a proxy model decides like its concrete one
        return kind

    def of(self, model_or_obj: type[models.Model] | models.Model) -> Kind:
        """The entry of a model (or of an instance's model); TypeError when none is registered: the policy must
        never guess a rule."""
        kind = self.by_model.get(type(model_or_obj))  # type: ignore[arg-type]  # an instance: one dict get
        if kind is None:
            kind = self.find(model_or_obj)
        if kind is None:
            model = model_or_obj if isinstance(model_or_obj, type) else type(model_or_obj)
            raise TypeError(f"The policy knows no rule for {model._meta.label_lower}.")
        return kind

    def exclusive(self, capability: str) -> Kind | None:
        """The kind whose development team alone holds ``capability`` (no role gives it), if any."""
        return self.by_exclusive.get(capability)

    def all(self) -> tuple[Kind, ...]:
        return tuple(self.by_model.values())

    def with_rule(self, rule: Rule) -> tuple[Kind, ...]:
        return tuple(k for k in self.by_model.values() if k.rule is rule)

    def declared(self) -> tuple[Kind, ...]:
        return self.with_rule(Rule.DECLARED)

    def shareable(self) -> tuple[Kind, ...]:
        """Kinds shared per object (their share tables feed the resolver's "share" rows)."""
        return tuple(k for k in self.by_model.values() if k.shares)

    def hideable(self) -> dict[str, Kind]:
        """Declared kinds that can be hidden, by their ``Hidden.kind``."""
        return {k.hidden_kind: k for k in self.declared() if k.hidden_kind}

    def faces_of(self, model: type[models.Model]) -> Faces:
        """The faces registered for ``model`` (an empty Faces, kept, when none are yet)."""
        return self.faces.setdefault(model, Faces())

    def console_form(self, model: type[models.Model]) -> Callable[[type], type]:
        """Class decorator: ``form`` is the console form of ``model``'s kind."""

        def attach(form: type) -> type:
            self.faces_of(model).form = form
            return form

        return attach

    def api_serializers(
        self, model: type[models.Model], *, write: type | None = None, update: type | None = None
    ) -> Callable[[type], type]:
        """Class decorator on the read serializer of ``model``'s kind, naming its create and PATCH bodies."""

        def attach(serializer: type) -> type:
            faces = self.faces_of(model)
            faces.serializer, faces.write_serializer, faces.update_serializer = serializer, write, update
            return serializer

        return attach

    def kind_services(self, model: type[models.Model]) -> Callable[[Any], Any]:
        """Decorator (on a class, instantiated once, or an object): the writes of ``model``'s kind."""

        def attach(services: Any) -> Any:
            self.faces_of(model).services = services() if isinstance(services, type) else services
            return services

        return attach

    def parent(self, kind: Kind) -> Kind:
        """A CHILD kind's parent entry (the registered model its ``within`` field points at)."""
        related = kind.model._meta.get_field(kind.within).related_model
        if not isinstance(related, type):
            raise TypeError(f"{kind.key}.{kind.within} does not point at a model.")
        return self.of(related)


registry = Registry()
register = registry.register
of = registry.of
find = registry.find
faces_of = registry.faces_of
console_form = registry.console_form
api_serializers = registry.api_serializers
kind_services = registry.kind_services
