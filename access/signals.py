"""Signals other apps answer, so that access never has to name their models.

``member_leaving_tenant`` is sent inside the transaction that removes a user from a tenant, before the membership
row goes: every app drops what gives that user access in the tenant (task shares, development-team seats, …), so
the removal ends all of it at the next request.
"""

from django.dispatch import Signal

member_leaving_tenant = Signal()  # kwargs: tenant, user, actor
