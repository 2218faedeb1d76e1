"""config.groupings: one scan of a queryset answers several groupings, each exactly as its own GROUP BY would."""

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, F, IntegerField, Q, Sum
from django.db.models.functions import Cast

from config.groupings import COUNT, DISTINCT, SUM, Way, several_ways

pytestmark = pytest.mark.django_db

User = get_user_model()


def _people() -> None:
    for name, first, staff, active in [
        ("ann", "Ann", True, True),
        ("bob", "Bob", True, False),
        ("cy", "Ann", False, True),
        ("dee", "Dee", False, True),
        ("o'hara", "Ann", False, False),  # a quote in a bound value
    ]:
        User.objects.create(username=name, first_name=first, is_staff=staff, is_active=active)


def _rows() -> Any:
    return User.objects.exclude(username="nobody's").annotate(
        active=Cast("is_active", IntegerField()), name=F("first_name")
    )


def test_each_way_matches_its_own_group_by(django_assert_num_queries: Any) -> None:
    _people()
    rows = _rows().values("is_staff", "name", "active")
    with django_assert_num_queries(1):
        by_staff, by_name, whole = several_ways(
            rows,
            Way(["is_staff"], n=COUNT, active=SUM("active"), names=DISTINCT("name")),
            Way(["name"], n=COUNT),
            Way([], n=COUNT, names=DISTINCT("name")),
        )
    expected = {
        v["is_staff"]: (v["n"], v["active"], v["names"])
        for v in _rows()
        .values("is_staff")
        .annotate(n=Count("pk"), active=Sum("active"), names=Count("name", distinct=True))
    }
    assert {bool(v["is_staff"]): (v["n"], v["active"], v["names"]) for v in by_staff} == expected
    assert expected == {True: (2, 1, 2), False: (3, 2, 2)}
    assert sorted((v["name"], v["n"]) for v in by_name) == [("Ann", 3), ("Bob", 1), ("Dee", 1)]
    assert whole == [{"n": 5, "names": 3}]
    assert set(by_name[0]) == {"name", "n"}  # only the way's own columns and aggregates


def test_the_queryset_filter_is_kept() -> None:
    _people()
    (by_staff,) = several_ways(
        _rows().filter(Q(username__startswith="o'")).values("is_staff"), Way(["is_staff"], n=COUNT)
    )
    assert [(bool(v["is_staff"]), v["n"]) for v in by_staff] == [(False, 1)]


def test_an_empty_scan_answers_no_groups_and_a_zero_whole() -> None:
    _people()
    groups, whole = several_ways(
        _rows().filter(username="nobody").values("name", "active"),
        Way(["name"], n=COUNT),
        Way([], n=COUNT, active=SUM("active")),
    )
    assert groups == []
    assert whole == [{"n": 0, "active": None}]


def test_a_queryset_that_can_match_nothing_answers_as_an_empty_scan(django_assert_num_queries: Any) -> None:
    _people()
    for nothing in (_rows().none(), _rows().filter(pk__in=[])):
        with django_assert_num_queries(0):
            groups, whole = several_ways(
                nothing.values("name", "active"),
                Way(["name"], n=COUNT),
                Way([], n=COUNT, active=SUM("active"), names=DISTINCT("name")),
            )
        assert groups == [] and whole == [{"n": 0, "active": None, "names": 0}]


def test_a_column_the_queryset_does_not_select_is_refused() -> None:
    with pytest.raises(ValueError, match="Not selected by the queryset: active, email"):
        several_ways(_rows().values("name"), Way(["email"], n=COUNT, active=SUM("active")))
    with pytest.raises(ValueError, match="at least one aggregate"):
        Way(["name"])
