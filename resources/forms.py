"""Console forms of the resources kinds: only each kind's own fields, registered with config.kinds.console_form."""
