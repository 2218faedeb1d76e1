from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """What a subtree looks like from above (roll-up), what a structural change would do before it is made (impact
    preview), and who holds what, attested by whom (access review): issue #12."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "governance"
