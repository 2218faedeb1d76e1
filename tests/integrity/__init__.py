"""Concurrent and stale writes: nothing is lost (DESIGN.md §4.9)."""
