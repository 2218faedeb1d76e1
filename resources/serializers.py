"""API serializers of the resources kinds: only each kind's own fields, registered with config.kinds.api_serializers."""
