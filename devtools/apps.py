from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Development tools: ``manage.py benchmark`` (with its peers, devtools/bench.py, and tree writes,
    devtools/bench_tree.py) and ``manage.py seed_scale`` (devtools/scale.py).

    Installed only when settings.DEVTOOLS is on (with DEBUG, under the test runner, or DEVTOOLS=True for the load
    test's preparation): production never imports it, and its peers need the dev requirements."""

    name = "devtools"
    verbose_name = "Development tools"
    default_auto_field = "django.db.models.BigAutoField"
