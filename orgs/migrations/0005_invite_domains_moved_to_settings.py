from django.db import migrations


class Migration(migrations.Migration):
    """The column's values were copied to the allowed_invite_domains setting by resources.0002 first."""

    dependencies = [
        ("orgs", "0004_fewer_tree_indexes"),
        ("resources", "0002_invite_domains_become_a_setting"),
    ]

    operations = [
        migrations.RemoveField(model_name="organization", name="invite_domains"),
    ]
