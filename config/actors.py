"""Who acts: a signed-in user, or the system.

Every service takes ``actor=``. A user is checked by the policy like any request; :data:`SYSTEM` is the platform
itself (management commands, sign-up's own bootstrap, migrations, scheduled purges, the agent protocol), which
``access.policy`` answers with every capability, as Sentry's ``SystemAccess`` does. It is passed explicitly:
``actor=None`` is a programming error everywhere (``require_actor`` raises TypeError), so forgetting an actor can
never silently skip authorization.
"""

from __future__ import annotations

from typing import Any, Final


class _System:
    """The platform acting on its own. Not a user: no pk, never authenticated as one, audited as "system"."""

    is_system: Final = True
    is_authenticated: Final = False
    is_active: Final = True
    is_superuser: Final = False
    pk: Final = None

    def get_username(self) -> str:
        return "system"

    def __repr__(self) -> str:
        return "SYSTEM"

    __str__ = get_username

    def __reduce__(self) -> str:  # pickles (and deep-copies) as the one instance
        return "SYSTEM"


SYSTEM: Final = _System()


def is_system(actor: Any) -> bool:
    return actor is SYSTEM


def require_actor(actor: Any) -> Any:
    """``actor`` itself, or TypeError for ``None``: say SYSTEM when the platform acts."""
    if actor is None:
        raise TypeError("actor=None is not an actor: pass the user who acts, or config.actors.SYSTEM.")
    return actor


def user_or_none(actor: Any) -> Any:
    """The user to store in ``created_by``/``granted_by`` columns: None for the system."""
    require_actor(actor)
    return None if actor is SYSTEM else actor
