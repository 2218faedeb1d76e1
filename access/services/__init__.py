"""Every write of the access app, split by noun; the common entry points are re-exported here."""

from access.services.tokens import issue_token, remember_org, revoke_token

__all__ = ["issue_token", "remember_org", "revoke_token"]
