"""canopy.W001: check --deploy warns when PostgreSQL's autovacuum is off, on the server or for the org table."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.core.checks import Warning, run_checks
from django.db import OperationalError, connection

from orgs import checks
from orgs.checks import autovacuum_enabled, autovacuum_problems, pg_bool, reloption
from orgs.models import Organization

TABLE = Organization._meta.db_table
ON = {"autovacuum": "on", "track_counts": "on"}


def ids(problems: list[Warning]) -> list[str]:
    return [p.id for p in problems]


# -- the logic, on what the queries would return ---------------------------------------------------------------------


def test_nothing_to_say_when_autovacuum_runs():
    assert autovacuum_problems(ON, TABLE, None) == []
    assert autovacuum_problems(ON, TABLE, []) == []
    tuned = ["autovacuum_vacuum_scale_factor=0.01", "autovacuum_enabled=true", "fillfactor=90"]
    assert autovacuum_problems(ON, TABLE, tuned) == []


def test_autovacuum_off_on_the_server_is_a_warning():
    problems = autovacuum_problems({**ON, "autovacuum": "off"}, TABLE, [])
    assert ids(problems) == ["canopy.W001"]
    assert "autovacuum is off on the server" in problems[0].msg and TABLE in problems[0].msg
    assert "ALTER SYSTEM SET autovacuum = on" in problems[0].hint
    assert "README.md" in problems[0].hint


def test_autovacuum_blind_without_track_counts_is_a_warning():
    problems = autovacuum_problems({**ON, "track_counts": "off"}, TABLE, None)
    assert ids(problems) == ["canopy.W001"] and "track_counts" in problems[0].msg


@pytest.mark.parametrize("value", ["false", "off", "0", "no", "f", "FALSE", "of", " Off "])
def test_autovacuum_disabled_for_the_org_table_is_a_warning(value: str):
    problems = autovacuum_problems(ON, TABLE, ["fillfactor=90", f"autovacuum_enabled={value}"])
    assert ids(problems) == ["canopy.W001"]
    assert f"autovacuum_enabled={value}" in problems[0].msg
    assert f"ALTER TABLE {TABLE} RESET (autovacuum_enabled)" in problems[0].hint


def test_each_problem_is_its_own_warning_naming_the_database():
    problems = autovacuum_problems(
        {"autovacuum": "off", "track_counts": "off"}, TABLE, ["autovacuum_enabled=off"], alias="replica"
    )
    assert ids(problems) == ["canopy.W001"] * 3
    assert all("database 'replica'" in p.msg for p in problems)


def test_only_the_table_own_option_counts():
    # The TOAST table's option is another table's business; a missing setting is PostgreSQL's default (on).
    assert autovacuum_problems(ON, TABLE, ["toast.autovacuum_enabled=off"]) == []
    assert autovacuum_problems({}, TABLE, None) == []


def test_booleans_are_read_as_postgresql_reads_them():
    assert [pg_bool(v) for v in ("on", "true", "t", "yes", "y", "1", "TRUE")] == [True] * 7
    assert [pg_bool(v) for v in ("off", "false", "fa", "no", "n", "0", "Of")] == [False] * 7
    assert [pg_bool(v) for v in ("", "o", "maybe", "2")] == [None] * 4
    assert reloption(["a=1", "Autovacuum_Enabled=off"], "autovacuum_enabled") == "off"
    assert reloption(None, "autovacuum_enabled") is None


# -- where it runs ----------------------------------------------------------------------------------------------------


def test_silent_on_sqlite(db: Any):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite case")
    with mock.patch.object(checks, "read_autovacuum_state") as read:
        assert autovacuum_enabled() == []
    read.assert_not_called()


def test_silent_when_the_database_cannot_be_reached(db: Any):
    with (
        mock.patch.object(connection, "vendor", "postgresql"),
        mock.patch.object(connection, "cursor", side_effect=OperationalError("connection refused")),
    ):
        assert autovacuum_enabled() == []


def test_reports_what_the_server_says(db: Any):
    """The registered check turns what it read into warnings (the query result stands in for a server)."""
    state = ({"autovacuum": "off", "track_counts": "on"}, ["autovacuum_enabled=false"])
    with (
        mock.patch.object(connection, "vendor", "postgresql"),
        mock.patch.object(checks, "read_autovacuum_state", return_value=state) as read,
    ):
        assert ids(autovacuum_enabled()) == ["canopy.W001", "canopy.W001"]
        assert ids(autovacuum_enabled(databases=["default"])) == ["canopy.W001", "canopy.W001"]
    read.assert_called_with("default", TABLE)


def test_a_deploy_check_only(db: Any):
    state = ({"autovacuum": "off"}, None)
    with (
        mock.patch.object(connection, "vendor", "postgresql"),
        mock.patch.object(checks, "read_autovacuum_state", return_value=state),
    ):
        deploy = ids(run_checks(include_deployment_checks=True, tags=["database"]))
        everyday = ids(run_checks(tags=["database"]))
    assert "canopy.W001" in deploy and "canopy.W001" not in everyday


# -- on a real PostgreSQL ---------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_reads_the_server_and_the_table_options(postgres_only: Any):
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_settings WHERE name = 'autovacuum'")
        server_on = cursor.fetchone()[0] == "on"
    server_warnings = [] if server_on else ["canopy.W001"]
    assert ids(autovacuum_enabled()) == server_warnings

    # DDL is transactional on PostgreSQL: the test's transaction takes the option away again.
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} SET (autovacuum_enabled = off, autovacuum_vacuum_scale_factor = 0.01)")
    problems = autovacuum_enabled()
    assert ids(problems) == [*server_warnings, "canopy.W001"]
    assert "autovacuum_enabled=off" in problems[-1].msg

    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} RESET (autovacuum_enabled)")
    assert ids(autovacuum_enabled()) == server_warnings
