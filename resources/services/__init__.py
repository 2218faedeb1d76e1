"""Every write to shared resources: ``from resources import services`` then ``services.create_task(actor=…)``."""

from resources.services.declarations import hidden_here, hide, reset_setting, set_setting, setting_version, unhide
from resources.services.resources import (
    add_component_member,
    create_component,
    create_credential,
    create_env_var,
    create_lookup_table,
    delete_component,
    delete_credential,
    delete_env_var,
    delete_lookup_table,
    export_lookup_csv,
    import_lookup_csv,
    publish_version,
    remove_component_member,
    update_component,
    update_credential,
    update_env_var,
    update_lookup_table,
)
from resources.services.tasks import (
    create_task,
    delete_task,
    purge_run_logs,
    run_task,
    share_task,
    shares_of,
    stop_run,
    unshare_task,
    update_task,
)

__all__ = [
    "add_component_member", "create_component", "create_credential", "create_env_var", "create_lookup_table",
    "create_task", "delete_component", "delete_credential", "delete_env_var", "delete_lookup_table", "delete_task",
    "export_lookup_csv", "hidden_here", "hide", "import_lookup_csv", "publish_version", "purge_run_logs",
    "remove_component_member", "reset_setting", "run_task", "set_setting", "setting_version", "share_task",
    "shares_of", "stop_run", "unhide", "unshare_task", "update_component", "update_credential", "update_env_var",
    "update_lookup_table", "update_task",
]  # fmt: skip
