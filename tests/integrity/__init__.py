"""Concurrent and stale writes: nothing is lost (docs/DESIGN.md §4.9)."""
