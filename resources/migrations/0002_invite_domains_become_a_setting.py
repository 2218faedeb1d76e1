"""Organization.invite_domains becomes the org setting allowed_invite_domains (inherit, override and lock).

Every non-empty list is copied to an OrgSetting row of its org before orgs.0005 drops the column; going back copies
the rows' values to the column again (a lock has no equivalent there and is dropped).
"""

from django.db import migrations

KEY = "allowed_invite_domains"


def forward(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    OrgSetting = apps.get_model("resources", "OrgSetting")
    rows = [
        OrgSetting(org_id=org_id, key=KEY, value=domains, locked=False)
        for org_id, domains in Organization.objects.values_list("id", "invite_domains").iterator()
        if domains
    ]
    OrgSetting.objects.bulk_create(rows, batch_size=1000)


def backward(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    OrgSetting = apps.get_model("resources", "OrgSetting")
    for org_id, domains in OrgSetting.objects.filter(key=KEY).values_list("org_id", "value"):
        Organization.objects.filter(pk=org_id).update(invite_domains=domains or [])
    OrgSetting.objects.filter(key=KEY).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0004_fewer_tree_indexes"),
        ("resources", "0001_initial"),
    ]

    operations = [migrations.RunPython(forward, backward)]
