"""Leave 30 % of each page of the org table free (PostgreSQL only; nothing to do elsewhere).

A tree write renumbers runs of neighbouring orgs at once, and PostgreSQL writes a new version of every row it
updates. With full pages (the default fillfactor 100) each new version goes to another page: the table grows by the
rows rewritten until VACUUM runs, and the tree's order on disk is lost. With room on the page the new version stays
next to the old one, and the next write's page pruning reclaims the old versions without VACUUM. Measured with
``manage.py benchmark --only tree_writes`` (README, Performance: Tree writes): the same writes left the org table at
194 MB with fillfactor 100, 101 MB with 90 and 64 MB with 70; the effect on CPU per write was within the noise of
the shared machine it was measured on (to be settled on a quiet one, between 70 and 90).

Existing pages keep their fill until the table is rewritten (``VACUUM FULL orgs_organization`` or pg_repack, in a
maintenance window); rows written from now on follow the setting.
"""

from django.db import migrations


def _table(apps, schema_editor) -> str:
    model = apps.get_model("orgs", "Organization")
    return schema_editor.quote_name(model._meta.db_table)


def leave_room(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {_table(apps, schema_editor)} SET (fillfactor = 70)")


def fill_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {_table(apps, schema_editor)} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0005_invite_domains_moved_to_settings"),
    ]

    operations = [
        migrations.RunPython(leave_room, fill_pages),
    ]
