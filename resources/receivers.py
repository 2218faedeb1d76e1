"""How resources answer the access app's signals (access.signals), so that access never names these models."""

from typing import Any

from django.dispatch import receiver

from access.signals import member_leaving_tenant
from resources.models import ComponentMember, TaskUserShare


@receiver(member_leaving_tenant, dispatch_uid="resources.member_leaving_tenant")
def drop_what_gives_access(*, tenant: Any, user: Any, **kwargs: Any) -> None:
    """A user removed from a tenant keeps no share of its tasks and no seat on its development teams."""
    TaskUserShare.objects.filter(user=user, content_object__project__org__tenant=tenant).delete()
    ComponentMember.objects.filter(user=user, component__org__tenant=tenant).delete()
