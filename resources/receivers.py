"""How resources answer the access app's signals (access.signals), so that access never names these models."""

from typing import Any

from django.db.models import F
from django.dispatch import receiver

from access.signals import member_leaving_tenant
from resources.models import Component, ComponentMember, Task, TaskUserShare


@receiver(member_leaving_tenant, dispatch_uid="resources.member_leaving_tenant")
def drop_what_gives_access(*, tenant: Any, user: Any, **kwargs: Any) -> None:
    """A user removed from a tenant keeps no share of its tasks and no seat on its development teams. Shares and
    teams are part of their task and component (resources.services), so those versions rise: an ETag or a form
    read before the removal is stale."""
    shares = TaskUserShare.objects.filter(user=user, content_object__project__org__tenant=tenant)
    seats = ComponentMember.objects.filter(user=user, component__org__tenant=tenant)
    Task.objects.filter(pk__in=shares.values("content_object")).update(version=F("version") + 1)
    Component.objects.filter(pk__in=seats.values("component")).update(version=F("version") + 1)
    shares.delete()
    seats.delete()
