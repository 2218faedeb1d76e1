"""Every part of an impact preview, in the order a preview shows them (governance/impact/engine.py)."""

from governance.impact.engine import CapabilityPart, Part

PARTS: list[Part] = [
    CapabilityPart(),
]
