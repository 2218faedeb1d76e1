"""Tasks remember what their steps' names resolved to (resources.services.references).

Existing tasks are bound to what their names resolve to now (the topmost lock, else the nearest declaration on the
org's path), so their runs go on as before; a name that resolves to nothing stays unbound and its runs fail with a
clear error until the task is saved again.
"""

from django.db import migrations, models

REFERENCES = (("credential", "http", "credential", "Credential"), ("lookup_table", "lookup", "table", "LookupTable"))


def bind_existing_tasks(apps, schema_editor):
    Task = apps.get_model("resources", "Task")
    for task in Task.objects.select_related("project__org").iterator(chunk_size=500):
        org = task.project.org
        steps = task.steps if isinstance(task.steps, list) else []
        bindings = {}
        for kind, step_type, field, model_name in REFERENCES:
            names = {
                step[field].strip().lower()
                for step in steps
                if isinstance(step, dict) and step.get("type") == step_type and isinstance(step.get(field), str)
            }
            if not names:
                continue
            chains = {}
            path = apps.get_model("resources", model_name).objects.filter(
                org__tree_id=org.tree_id, org__lft__lte=org.lft, org__rght__gte=org.rght, org__deleted_at__isnull=True
            )
            for declaration in path.order_by("org__lft"):
                chains.setdefault(declaration.name.lower(), []).append(declaration)
            for name in names:
                chain = chains.get(name)
                if chain:
                    winner = next((d for d in chain if d.locked), chain[-1])
                    bindings.setdefault(kind, {})[name] = str(winner.pk)
        if bindings:
            task.bindings = bindings
            task.save(update_fields=["bindings"])


class Migration(migrations.Migration):
    dependencies = [("resources", "0002_invite_domains_become_a_setting")]

    operations = [
        migrations.AddField(
            model_name="task",
            name="bindings",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.RunPython(bind_existing_tasks, migrations.RunPython.noop),
    ]
