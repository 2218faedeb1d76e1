"""Template context about the signed-in account, computed only when a template asks for it."""

from typing import Any

from django.http import HttpRequest

from config.admin import may_use_admin


def account(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    # A callable: the template calls it only where the admin link is drawn (it may cost the user's grants query,
    # which org pages have loaded already).
    return {"can_use_admin": lambda: may_use_admin(user)}
