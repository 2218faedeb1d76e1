"""Development-only tools (benchmark, synthetic tenants): see devtools/apps.py."""
