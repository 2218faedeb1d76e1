"""Usernames unique whatever their case, and a verified e-mail address that belongs to one account.

Adding the case-insensitive constraint would fail on a database that already holds "Alice" and "alice". Nothing is
renamed or merged behind anyone's back: the migration stops with the list of clashing accounts, so that an operator
renames one of each pair (``manage.py shell``) and runs it again. Existing addresses start unverified: nobody proved
they receive mail there yet.
"""

import access.models
from django.db import migrations, models
from django.db.models.functions import Lower


def refuse_clashing_usernames(apps, schema_editor):
    User = apps.get_model("access", "User")
    seen: dict[str, list[str]] = {}
    for username in User.objects.values_list("username", flat=True).iterator():
        seen.setdefault(username.lower(), []).append(username)
    clashes = sorted(names for names in seen.values() if len(names) > 1)
    if clashes:
        listing = "; ".join(", ".join(sorted(names)) for names in clashes[:50])
        raise RuntimeError(
            f"{len(clashes)} username(s) differ only by case: {listing}. Usernames become unique whatever their "
            "case: rename one account of each group, then run the migration again. Nothing was changed."
        )


class Migration(migrations.Migration):
    dependencies = [("access", "0003_builtin_roles")]

    operations = [
        migrations.RunPython(refuse_clashing_usernames, migrations.RunPython.noop),
        migrations.AlterModelManagers(name="user", managers=[("objects", access.models.CanopyUserManager())]),
        migrations.AddField(
            model_name="user",
            name="email_verified_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(Lower("username"), name="user_username_unique_any_case"),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                Lower("email"), condition=models.Q(email_verified_at__isnull=False), name="user_verified_email_once"
            ),
        ),
    ]
